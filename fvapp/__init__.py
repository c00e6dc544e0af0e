"""fvapp: ForceVue's workspace API keys and the REST API v1 they unlock."""

from __future__ import annotations

from flask import Flask

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
    security.register(app)
    web.register(app)
    register_error_handlers(app)
    register_cli(app)
    from . import request_log

    request_log.install(app)  # outermost WSGI wrapper: one log line per request (SPEC §10)
    return app
