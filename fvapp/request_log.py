"""One log line per request (SPEC §10), written by a WSGI wrapper around the whole app:

    2026-12-01T04:20:43.123Z request_id=5f0e… method=GET path=/api/v1/me status=200
        duration_ms=3.1 key_prefix=fvk_live_AbCd   (one line)

time (UTC), request id (the API's X-Request-Id / meta.requestId: this wrapper assigns it before
the app runs), method, path (never the query string, which may carry anything), status, duration
(until the app returned its response), and for a request with a Bearer key the key's display
prefix — the 13 characters Settings shows, never the key; a token that is not shaped like a key
is not logged at all. Never a header value, cookie or body.

Cheap by design, the API's hot path runs through it: no database or Redis, no Flask hooks; a uuid4,
a clock read, a regex on the Authorization header when there is one, one logging call (or,
with the default handler, one write of the same line: `_emit`). Logger
"fvapp.request" at INFO; when nothing configured a handler for it, it writes to the process's
stderr (where gunicorn's workers' output goes). LOG_REQUESTS=0 turns it off.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from urllib.parse import quote

from .services import key_auth, keys

REQUEST_ID = "fvapp.request_id"  # the WSGI environ key the API's envelope reads it from
LOGGER = "fvapp.request"
PATH_MAX = 300  # characters logged of a path

log = logging.getLogger(LOGGER)


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of the call (as logging.lastResort does),
    not to the one there was when the handler was made."""

    def __init__(self):
        super().__init__()
        self.setFormatter(_formatter())

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ assigns it; always sys.stderr here
        pass


def _formatter() -> logging.Formatter:
    formatter = logging.Formatter("%(asctime)s.%(msecs)03dZ %(message)s", "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    return formatter


def _printable(text: str, limit: int) -> str:
    """The path as it was on the wire (percent-encoded where it is not plain printable ASCII):
    a line break or a space in a path cannot forge or split a log line."""
    if not (text.isascii() and text.isprintable()) or " " in text:
        text = quote(text.encode("latin-1", "replace"), safe="/:@!$&'()*+,;=-._~%")
    return text[:limit]


def key_prefix(authorization: str | None) -> str:
    """The display prefix of a Bearer key, "-" without one (or with a token not shaped like a
    key: it might be any other secret, so nothing of it is logged)."""
    token = key_auth.bearer_token(authorization)
    if token is None or not keys.KEY_PATTERN.match(token):
        return "-"
    return keys.display_prefix(token).rstrip("…")


class RequestLog:
    """The WSGI middleware: app.wsgi_app = RequestLog(app.wsgi_app)."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        environ[REQUEST_ID] = request_id = str(uuid.uuid4())
        status = ["500"]  # if the app raises, the server answers 500

        def recording_start_response(status_line, headers, exc_info=None):
            status[0] = status_line[:3]
            return start_response(status_line, headers, exc_info)

        try:
            return self.wsgi_app(environ, recording_start_response)
        finally:
            _emit(
                "request_id=%s method=%s path=%s status=%s duration_ms=%.1f key_prefix=%s",
                request_id,
                _printable(environ.get("REQUEST_METHOD", "-"), 16),
                _printable(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), PATH_MAX),
                status[0],
                (time.perf_counter() - started) * 1000,
                key_prefix(environ.get("HTTP_AUTHORIZATION")),
            )


_stamp: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text


def _emit(message: str, *args) -> None:
    """log.info(message, *args). While the one handler is install()'s own stderr handler (no
    filters, no propagation), the line is written straight to it: the same text as its
    formatter's, without a LogRecord and the logging machinery (a few per cent of an API
    request). Any other set-up (handlers configured, a test's capture) gets log.info."""
    handlers = log.handlers
    if (len(handlers) != 1 or type(handlers[0]) is not _Stderr or log.propagate or log.filters
            or handlers[0].filters or not log.isEnabledFor(logging.INFO)
            or handlers[0].level > logging.INFO):
        log.info(message, *args)
        return
    global _stamp
    now, stamp = time.time(), _stamp
    if stamp[0] != int(now):
        stamp = _stamp = (int(now), time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(now))))
    line = f"{stamp[1]}.{int((now - stamp[0]) * 1000):03d}Z {message % args}\n"
    handler = handlers[0]
    with handler.lock:
        try:
            stream = sys.stderr
            stream.write(line)
            stream.flush()
        except Exception:  # as logging does: report it, never fail the request
            handler.handleError(logging.makeLogRecord({"msg": line, "args": None}))


def install(app) -> None:
    """Wrap the app (outermost) unless LOG_REQUESTS is off; give the logger a stderr handler at
    INFO unless one was configured for it."""
    if not app.config.get("LOG_REQUESTS", True):
        return
    if not log.handlers:
        log.addHandler(_Stderr())
        log.propagate = False  # one line, not a second copy through the root logger's handlers
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)
    app.wsgi_app = RequestLog(app.wsgi_app)
