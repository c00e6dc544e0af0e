import uuid

from flask import Blueprint

from ..extensions import db
from ..models import User

bp = Blueprint("auth", __name__)


def configure_login(login_manager) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(session_id: str):
        # "<user id>:<generation>": logout bumps the generation, so older cookies load nobody.
        try:
            user_hex, generation = session_id.split(":", 1)
            user = db.session.get(User, uuid.UUID(hex=user_hex))
            if user is None or user.session_generation != int(generation):
                return None
        except (ValueError, TypeError):
            return None
        return user


from . import views  # noqa: E402,F401
