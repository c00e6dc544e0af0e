"""The pages' browser session: Flask's signed cookie, with an idle and an absolute lifetime.

Every session carries when it began ("_born") and when it was last used ("_seen", refreshed at
most once a minute so not every request rewrites the cookie): one idle for
SESSION_IDLE_TIMEOUT seconds, or older than SESSION_ABSOLUTE_LIFETIME, is dropped and its
cookie deleted (SPEC §7), so a cookie copied off a machine does not work for ever. Not opened
for /healthz and /readyz (a probe has no session). The API app has no session at all
(fvapp/api/app.py)."""

from __future__ import annotations

import time

from flask.sessions import SecureCookieSessionInterface


class SessionInterface(SecureCookieSessionInterface):
    SEEN_EVERY = 60  # seconds

    def open_session(self, app, request):
        from .health import PATHS as OPERATIONAL_PATHS

        if request.path in OPERATIONAL_PATHS:
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
