"""One log line per request (SPEC §10), and no key in clear in any log line (SPEC §11).

The request line, written by a WSGI wrapper around the whole app through an ordinary logger,
"fvapp.request", at INFO, with `Formatter` below:

    2026-12-01T04:20:43.123Z request_id=5f0e… method=GET path=/api/v1/me status=200
        duration_ms=3.1 key_prefix=fvk_live_AbCd   (one line)

time (UTC), request id (the API's X-Request-Id / meta.requestId: this wrapper assigns it before
the app runs), method, path (never the query string, which may carry anything; a key-shaped
string in it is written as its display prefix), status, duration (until the app returned its
response), and for a request with a Bearer key the key's display prefix — the 13 characters
Settings shows, never the key; a token that is not shaped like a key is not logged at all.
Never a header value, cookie or body. No database or Redis, no Flask hooks: a uuid4, a clock
read, a regex on the Authorization header when there is one, one logging call.

Any handler works: one configured for "fvapp.request" gets the records (give it `Formatter` for
the line above); when none is, install() gives the logger a handler writing to the process's
stderr (where gunicorn's workers' output goes) with `Formatter`, and turns its propagation off
(one line, not a second copy through the root logger's handlers). LOG_REQUESTS=0 turns the
line off.

Keys in the other logs: `RedactKeys`, a logging.Filter, rewrites every key-shaped string of a
record (message and traceback) as its display prefix, on the app's logger (Flask's app.logger),
the error handlers' ("fvapp.errors"), Werkzeug's (the development server's access line, `make
run`) and gunicorn's error log.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from urllib.parse import quote

from .services import key_auth, keys

REQUEST_ID = "fvapp.request_id"  # the WSGI environ key the API's envelope reads it from
LOGGER = "fvapp.request"
PATH_MAX = 300  # characters logged of a path
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
# The loggers whose records may quote a request (a path, a request line, an exception's text).
REDACTED_LOGGERS = ("fvapp.errors", "werkzeug", "gunicorn.error")

log = logging.getLogger(LOGGER)

# A key, or anything that starts like one: "fvk_live_" (its underscores maybe percent-encoded,
# as in a request line) and more than the 4 characters of the display prefix.
KEY_SHAPED = re.compile(rf"fvk(?:_|%5f)live(?:_|%5f)([0-9A-Za-z]{{{keys.DISPLAY_CHARS}}})"
                        r"[0-9A-Za-z]+", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with every key-shaped string written as its display prefix (fvk_live_AbCd…)."""
    return KEY_SHAPED.sub(lambda found: f"{keys.KEY_PREFIX}{found.group(1)}…", text)


class RedactKeys(logging.Filter):
    """A filter for loggers whose records may quote a request: the message and the traceback
    are written with every key-shaped string as its display prefix."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if KEY_SHAPED.search(message):
            record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            # Formatter.format uses exc_text when set: the traceback, redacted once here.
            text = logging.Formatter().formatException(record.exc_info)
            if KEY_SHAPED.search(text):
                record.exc_text = redact(text)
        return True


REDACT_KEYS = RedactKeys()


class Formatter(logging.Formatter):
    """The request line: the UTC time to the millisecond, then the message.

    `format` writes it with one f-string and the time's seconds formatted once per second (the
    request line has neither exception nor stack, its common case); a record with either goes
    through logging.Formatter.format with the same format string."""

    converter = time.gmtime

    def __init__(self):
        super().__init__("%(asctime)s.%(msecs)03dZ %(message)s", TIME_FORMAT)
        self.second = (None, "")  # (an int(record.created), its formatTime), replaced as one

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text or record.stack_info:
            return super().format(record)
        created = int(record.created)
        second, stamp = self.second
        if created != second:
            stamp = time.strftime(TIME_FORMAT, self.converter(created))
            self.second = (created, stamp)
        record.message, record.asctime = record.getMessage(), stamp
        return f"{stamp}.{int(record.msecs):03d}Z {record.message}"


class StderrHandler(logging.StreamHandler):
    """The default handler: writes to whatever sys.stderr is at the time of the call (as
    logging.lastResort does), not to the one there was when the handler was made."""

    def __init__(self):
        super().__init__()
        self.setFormatter(Formatter())

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ assigns it; always sys.stderr here
        pass


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


def logged_path(environ) -> str:
    """The request's path as the line shows it: printable, cut, keys as their display prefix."""
    return redact(_printable(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""),
                             PATH_MAX))


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
            if log.isEnabledFor(logging.INFO):
                # The line formatted here, once (no %-arguments left for each handler), and
                # handed to the logger as a record made by its public factory: Logger.info
                # would also look up the caller's frame, which the line never shows.
                log.handle(log.makeRecord(LOGGER, logging.INFO, __file__, 0, (
                    f"request_id={request_id}"
                    f" method={_printable(environ.get('REQUEST_METHOD', '-'), 16)}"
                    f" path={logged_path(environ)} status={status[0]}"
                    f" duration_ms={(time.perf_counter() - started) * 1000:.1f}"
                    f" key_prefix={key_prefix(environ.get('HTTP_AUTHORIZATION'))}"), None, None,
                    "RequestLog"))


def install(app, *mounted) -> None:
    """Keys are redacted in the logs that may quote a request (always: the app's logger, those
    of the apps `mounted` in it, and REDACTED_LOGGERS); the request line: wrap the app
    (outermost) unless LOG_REQUESTS is off, and give its logger a stderr handler at INFO unless
    one was configured for it."""
    loggers = (app.logger, *(other.logger for other in mounted), *map(logging.getLogger, REDACTED_LOGGERS))
    for logger in loggers:
        logger.addFilter(REDACT_KEYS)  # once: addFilter keeps one of each
    if not app.config.get("LOG_REQUESTS", True):
        return
    if not log.handlers:
        log.addHandler(StderrHandler())
        log.propagate = False  # one line, not a second copy through the root logger's handlers
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)
    app.wsgi_app = RequestLog(app.wsgi_app)
