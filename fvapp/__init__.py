"""fvapp: ForceVue's workspace API keys and the REST API v1 they unlock."""

from __future__ import annotations

from urllib.parse import quote

from flask import Flask, has_request_context, request

from .config import INSTANCE, ROOT, from_environment
from .paths import API_ROOT

API_APP = "fvapp_api_app"  # app.extensions key: the API app mounted in this pages app


def create_app(overrides: dict | None = None) -> Flask:
    """The WSGI application: the pages app, with the API app (fvapp/api/app.py) mounted under
    /api by Werkzeug's DispatcherMiddleware. Both are made here from one configuration; each
    registers only its own extensions, blueprints and error handlers.

    Around both, outermost first: the request log (one line per request, SPEC §10), then
    ProxyFix when TRUSTED_PROXY_HOPS is set, then the dispatcher, which hands /api and below to
    the API app (SCRIPT_NAME /api) and everything else to the pages app."""
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(INSTANCE),
    )
    app.config.update(from_environment(overrides=overrides))

    from . import db_setup  # noqa: F401  (engine event listeners)
    from .extensions import csrf, db, limiter, login_manager, migrate

    db.init_app(app)
    migrate.init_app(
        app, db, directory=str(ROOT / "migrations"), render_as_batch=True, compare_type=True
    )
    from . import bodies

    bodies.init_app(app)  # first: a form is read whole, or 413, before CSRF parses it
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    from . import usage

    usage.init_app(app)

    from . import auth, ratelimit, security, web
    from .auth import bp as auth_bp
    from .cli import register_cli
    from .dashboard import bp as dashboard_bp
    from .errors import register_error_handlers
    from .health import bp as health_bp
    from .session import SessionInterface
    from .settings import bp as settings_bp

    auth.configure_login(login_manager)
    app.register_blueprint(auth_bp)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(settings_bp)
    app.register_blueprint(health_bp)
    app.session_interface = SessionInterface()
    security.register(app)
    web.register(app)
    register_error_handlers(app)
    register_cli(app)

    from .api.app import create_api_app

    # One usage aggregator per process (it counts API answers, fvapp/usage/counting.py), flushed with
    # the pages app's context: the same database. One rate-limit store (fvapp/ratelimit): the
    # API's limiter and the sign-in throttle share its Redis client and its circuit breaker.
    api = app.extensions[API_APP] = create_api_app(app.config, shared={
        usage.EXTENSION: app.extensions[usage.EXTENSION],
        ratelimit.EXTENSION: ratelimit.store_of(app),
    })
    # Each app builds the other's URLs (the settings page links the API reference; the
    # reference page loads its script from /static), relative to the same request.
    app.url_build_error_handlers.append(_builder(api, lambda root: root + API_ROOT))
    api.url_build_error_handlers.append(_builder(app, lambda root: root.removesuffix(API_ROOT)))
    _dispose_together(app, api)
    mount(app, api)
    return app


def _dispose_together(app: Flask, api: Flask) -> None:
    """Disposing the pages app's engine disposes the API app's as well: one database set-up.
    Flask-SQLAlchemy makes one engine (and pool) per app; the API's serves only API requests."""
    from sqlalchemy import event

    from .extensions import db

    with app.app_context():
        pages_engine = db.engine
    with api.app_context():
        api_engine = db.engine
    event.listen(pages_engine, "engine_disposed", lambda engine: api_engine.dispose())


def mount(app: Flask, api: Flask) -> None:
    """app.wsgi_app: the dispatcher between the two apps, ProxyFix around it when configured
    (both apps see the client's address and scheme), the request log outermost."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {API_ROOT: api})
    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    from . import request_log

    request_log.install(app, api)  # outermost WSGI wrapper: one log line per request (SPEC §10)


def api_app(app: Flask) -> Flask:
    """The API app mounted in this pages app (create_app)."""
    return app.extensions[API_APP]


def _builder(other: Flask, script_name):
    """A url_build_error_handler: an endpoint this app does not have, built by `other` for the
    current request, under the script name `script_name(this app's root path)`. None (the
    BuildError stands) outside a request or when `other` does not have it either."""
    from werkzeug.routing import BuildError

    def build(error, endpoint, values):
        if not has_request_context():
            return None
        values = dict(values)
        anchor, method = values.pop("_anchor", None), values.pop("_method", None)
        scheme, external = values.pop("_scheme", None), values.pop("_external", False)
        adapter = other.url_map.bind(request.host, script_name=script_name(request.root_path),
                                     url_scheme=request.scheme)
        try:
            url = adapter.build(endpoint, values, method=method, url_scheme=scheme,
                                force_external=bool(external or scheme))
        except BuildError:
            return None
        if anchor is not None:
            url += f"#{quote(anchor, safe='%!#$&*+,/:;=?@')}"
        return url

    return build
