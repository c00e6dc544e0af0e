"""The API's own Flask application: everything under /api (SPEC §5, §8, §9).

fvapp.create_app mounts it under /api with Werkzeug's DispatcherMiddleware (Flask's
"application dispatching"), in the same process and on the same configuration values, so one
WSGI app serves the pages and the API. It registers only what the API needs: REST v1 and its
reference page (/api/v1/…), MCP (/api/mcp), the leak-report endpoint (/api/secret-scanning), the
database, the security headers and the SPEC §5 envelope for every error. No CSRF, no
Flask-Login, no Flask-Limiter, no cookie session: none of them has anything to do under /api,
so none is registered here.

Its routes are relative to the mount (/v1/me); Flask adds the mount point (SCRIPT_NAME) to
every URL it builds, so url_for gives /api/v1/… here.
"""

from __future__ import annotations

from flask import Config, Flask, request
from flask.sessions import SessionInterface
from werkzeug.exceptions import HTTPException, InternalServerError

from ..config import ROOT as PROJECT_ROOT
from ..extensions import db
from ..paths import API_PREFIX, API_ROOT
from ..services.errors import DomainError


def create_api_app(config: Config, shared: dict | None = None) -> Flask:
    """The API app on this configuration: the pages app's own Config object (fvapp.create_app),
    so one configuration serves both, a value changed at run time included. `shared`: the
    process's objects the pages app made, adopted before anything here looks for them (the
    usage aggregator; the rate-limit store with its one circuit breaker)."""
    app = Flask(__name__, template_folder=str(PROJECT_ROOT / "templates"), static_folder=None)
    app.config = config
    app.extensions.update(shared or {})
    # "//" in a path would get Werkzeug's HTML 308 before any handler: here every answer is the
    # envelope, so a double slash is simply a path that does not exist (404).
    app.url_map.merge_slashes = False

    from .. import db_setup  # noqa: F401  (engine event listeners)

    db.init_app(app)
    app.session_interface = NoSession()

    from .. import security
    from . import auth
    from . import bp as api_bp
    from .docs import bp as docs_bp
    from .mcp import bp as mcp_bp
    from .secret_scanning import bp as secret_scanning_bp

    version = API_PREFIX.removeprefix(API_ROOT)  # /v1, below the mount point
    app.register_blueprint(api_bp, url_prefix=version)
    app.register_blueprint(docs_bp, url_prefix=version)
    app.register_blueprint(mcp_bp, url_prefix=mcp_bp.url_prefix.removeprefix(API_ROOT))
    app.register_blueprint(secret_scanning_bp)
    development = app.config["ENV_MODE"] == "development"

    @app.after_request
    def finish(response):
        """The API app's one after_request hook (Flask's cost is per hook): the answer counted
        for its key, then its X-RateLimit-* headers (fvapp/api/auth.py: nothing for a request
        that read no key). The security headers follow them, added by ApiHeaders."""
        limits = auth.finished_headers(response.status_code)
        if limits:
            h = response.headers
            h[len(h):] = limits  # Headers' slice assignment: appended in one step
        return response

    app.wsgi_app = security.ApiHeaders(app.wsgi_app, development)

    register_error_handlers(app)
    return app


class NoSession(SessionInterface):
    """The API app's session interface (Flask's documented extension point): no cookie is read
    or written, every request gets Flask's null session. A browser's session cookie
    authenticates nothing under /api, and an API answer never sets a cookie."""

    def open_session(self, app, request):
        return self.make_null_session(app)

    def save_session(self, app, session, response):
        return None


def register_error_handlers(app: Flask) -> None:
    """Every error under /api answers in the envelope (fvapp/api/envelope.py): routing's 404 and
    405 (any unknown path under /api), 413, the API's and the services' refusals, an unavailable
    database (503 with Retry-After) and anything else (500, logged)."""
    from ..errors import RETRY_AFTER, database_unavailable, log
    from . import envelope

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        return envelope.error_for_exception(exc)

    @app.errorhandler(Exception)
    def _exception(exc: Exception):
        if database_unavailable(exc):
            log.warning("database unavailable: %s", type(exc).__name__)
            db.session.rollback()
            return envelope.error(503, headers=RETRY_AFTER)
        if isinstance(exc, (envelope.ApiError, DomainError)):
            return envelope.error_for_exception(exc)  # the API's and the services' refusals
        log.exception("unhandled error on %s %s", request.method, request.script_root + request.path)
        db.session.rollback()
        return envelope.error_for_exception(InternalServerError())
