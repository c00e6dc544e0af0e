"""fvapp: ForceVue's workspace API keys and the REST API v1 they unlock."""

from __future__ import annotations

from functools import partial, wraps

from flask import Flask, request

from .config import INSTANCE, ROOT, from_environment


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(INSTANCE),
    )
    app.config.update(from_environment(overrides=overrides))
    # "//" in a path would get Werkzeug's HTML 308 before any handler: under /api/v1 every answer
    # must be the envelope, so a double slash is simply a path that does not exist (404).
    app.url_map.merge_slashes = False
    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    from . import db_setup  # noqa: F401  (engine event listeners)
    from .extensions import csrf, db, limiter, login_manager, migrate

    db.init_app(app)
    migrate.init_app(
        app, db, directory=str(ROOT / "migrations"), render_as_batch=True, compare_type=True
    )
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    from . import usage

    usage.init_app(app)

    from . import auth, security, web
    from .api import SessionInterface
    from .api import bp as api_bp
    from .app import bp as app_bp
    from .auth import bp as auth_bp
    from .cli import register_cli
    from .errors import register_error_handlers
    from .health import bp as health_bp
    from .settings import bp as settings_bp

    auth.configure_login(login_manager)
    app.register_blueprint(auth_bp)
    app.register_blueprint(app_bp)
    app.register_blueprint(settings_bp)
    app.register_blueprint(api_bp)
    csrf.exempt(api_bp)
    app.register_blueprint(health_bp)
    from .api.secret_scanning import bp as secret_scanning_bp

    app.register_blueprint(secret_scanning_bp)  # under /api, but not the Bearer-key API
    csrf.exempt(secret_scanning_bp)
    from .api.docs import bp as api_docs_bp
    from .api.mcp import bp as mcp_bp

    app.register_blueprint(api_docs_bp)

    app.register_blueprint(mcp_bp)
    csrf.exempt(mcp_bp)
    app.session_interface = SessionInterface()  # never opened under /api/
    _pages_only(app, limiter, login_manager)
    security.register(app)
    web.register(app)
    register_error_handlers(app)
    register_cli(app)
    from . import request_log

    request_log.install(app)  # outermost WSGI wrapper: one log line per request (SPEC §10)
    return app


def _pages_only(app: Flask, *extensions) -> None:
    """The app-wide request hooks of these extensions run for pages only, never under /api/:
    Flask-Limiter's (its limits guard the sign-in pages; the API has its own limiter, and its
    hooks cost as much as a request's own work even with nothing to limit) and Flask-Login's
    remember-me cookie (the API opens no session and sets no cookie)."""
    from .api import is_api_request

    def owner(hook):
        if isinstance(hook, partial):
            return hook.args[0] if hook.args else None
        return getattr(hook, "__self__", None)

    def guard(hook, passes_response: bool):
        @wraps(hook)
        def for_pages(*args):
            if is_api_request(request.path):
                return args[0] if passes_response else None
            return hook(*args)

        return for_pages

    for registry, passes_response in ((app.before_request_funcs, False),
                                      (app.after_request_funcs, True),
                                      (app.teardown_request_funcs, False)):
        hooks = registry.get(None, [])
        hooks[:] = [guard(hook, passes_response) if owner(hook) in extensions else hook
                    for hook in hooks]
