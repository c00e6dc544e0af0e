"""REST API v1 under /api/v1 (SPEC §5): Bearer keys only, JSON envelope on every response.
Served by the API app (fvapp/api/app.py), mounted under /api."""

from flask import Blueprint

from ..paths import API_PREFIX as PREFIX

bp = Blueprint("api", __name__, url_prefix=PREFIX)


from . import auth, views  # noqa: E402,F401
