from flask import Blueprint

bp = Blueprint("app", __name__)

from . import views  # noqa: E402,F401
