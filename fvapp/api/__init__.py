"""REST API v1 under /api/v1 (SPEC §5): Bearer keys only, JSON envelope on every response."""

from flask import Blueprint
from flask.sessions import SecureCookieSessionInterface

ROOT = "/api"
PREFIX = ROOT + "/v1"

bp = Blueprint("api", __name__, url_prefix=PREFIX)


def is_api_request(path: str) -> bool:
    """Whether a request path is the API's: all of /api and below, routed or not (so an unknown
    /api/v2/… answers 404 in the envelope too). The one test the session interface and the
    app-level error handlers (fvapp/errors.py) use."""
    return path == ROOT or path.startswith(ROOT + "/")


class SessionInterface(SecureCookieSessionInterface):
    """The browser session is never opened for the API: a logged-in cookie authenticates
    nothing there, and an API response never sets a cookie. Nor for /healthz and /readyz."""

    def open_session(self, app, request):
        from ..health import PATHS as OPERATIONAL_PATHS

        if is_api_request(request.path) or request.path in OPERATIONAL_PATHS:
            return self.null_session_class()
        return super().open_session(app, request)


from . import auth, views  # noqa: E402,F401
