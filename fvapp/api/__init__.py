"""REST API v1 under /api/v1 (SPEC §5): Bearer keys only, JSON envelope on every response."""

from flask import Blueprint
from flask.sessions import SecureCookieSessionInterface

PREFIX = "/api/v1"

bp = Blueprint("api", __name__, url_prefix=PREFIX)


class SessionInterface(SecureCookieSessionInterface):
    """The browser session is never opened under /api/: a logged-in cookie authenticates
    nothing there, and an API response never sets a cookie."""

    def open_session(self, app, request):
        if request.path.startswith("/api/"):
            return self.null_session_class()
        return super().open_session(app, request)


from . import auth, views  # noqa: E402,F401
