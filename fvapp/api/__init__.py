"""REST API v1 under /api/v1 (SPEC §5): Bearer keys only, JSON envelope on every response."""

import time

from flask import Blueprint
from flask.sessions import SecureCookieSessionInterface

from ..paths import API_PREFIX as PREFIX
from ..paths import API_ROOT as ROOT

bp = Blueprint("api", __name__, url_prefix=PREFIX)


def is_api_request(path: str) -> bool:
    """Whether a request path is the API's: all of /api and below, routed or not (so an unknown
    /api/v2/… answers 404 in the envelope too). The one test the session interface and the
    app-level error handlers (fvapp/errors.py) use."""
    return path == ROOT or path.startswith(ROOT + "/")


class SessionInterface(SecureCookieSessionInterface):
    """The browser session is never opened for the API: a logged-in cookie authenticates
    nothing there, and an API response never sets a cookie. Nor for /healthz and /readyz.

    Every other session carries when it began ("_born") and when it was last used ("_seen",
    refreshed at most once a minute so not every request rewrites the cookie): one idle for
    SESSION_IDLE_TIMEOUT seconds, or older than SESSION_ABSOLUTE_LIFETIME, is dropped and its
    cookie deleted (SPEC §7), so a cookie copied off a machine does not work for ever."""

    SEEN_EVERY = 60  # seconds

    def open_session(self, app, request):
        from ..health import PATHS as OPERATIONAL_PATHS

        if is_api_request(request.path) or request.path in OPERATIONAL_PATHS:
            return self.null_session_class()
        session = super().open_session(app, request)
        if session is None or not session:
            return session
        now = int(time.time())
        born, seen = session.get("_born"), session.get("_seen")
        if (not isinstance(born, int) or not isinstance(seen, int)
                or now - seen > app.config["SESSION_IDLE_TIMEOUT"]
                or now - born > app.config["SESSION_ABSOLUTE_LIFETIME"]):
            expired = self.session_class()
            expired.modified = True  # an empty, modified session: its cookie is deleted
            return expired
        if now - seen >= self.SEEN_EVERY:
            session["_seen"] = now
        return session

    def save_session(self, app, session, response):
        if session and "_born" not in session:  # a new session (sign-in clears the old one)
            session["_born"] = session["_seen"] = int(time.time())
        return super().save_session(app, session, response)


from . import auth, views  # noqa: E402,F401
