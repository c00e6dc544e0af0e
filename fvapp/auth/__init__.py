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

    @login_manager.unauthorized_handler
    def unauthorized():
        # htmx ignores the headers of a 3xx answer and would swap the login page into a
        # dialog: tell it to load the login page as a whole, coming back to the page shown.
        from urllib.parse import urlsplit

        from flask import flash, redirect, request, url_for

        from ..web.htmx import hx_redirect, is_htmx

        if is_htmx():
            shown = urlsplit(request.headers.get("HX-Current-URL", "")).path or "/"
            return hx_redirect(url_for("auth.login", next=shown), 401)
        flash(login_manager.login_message, login_manager.login_message_category)
        if request.method in ("GET", "HEAD"):
            back = request.full_path.rstrip("?")
        else:  # a form sent after the session ended: come back to the page it was on
            back = urlsplit(request.referrer or "").path or None
        return redirect(url_for("auth.login", next=back))

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
