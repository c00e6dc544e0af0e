"""fvapp: ForceVue's workspace API keys and the REST API v1 they unlock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from inspect import CO_COROUTINE

from flask import Flask, request

from .config import INSTANCE, ROOT, from_environment


def create_app(overrides: dict | None = None) -> Flask:
    app = _Flask(
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
    from . import bodies

    with _pages_only(app):  # their app-wide request hooks run for pages only, never under /api/
        bodies.init_app(app)  # first: a form is read whole, or 413, before CSRF parses it
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


@contextmanager
def _pages_only(app: Flask) -> Iterator[None]:
    """The app-wide request hooks registered inside this block (by the extensions' init_app)
    run for pages only, never under /api/: Flask-WTF's CSRF check (the API opens no session, so
    no cookie authenticates anything there; its blueprints are exempt anyway), Flask-Limiter's
    (its limits guard the sign-in pages; the API has its own limiter, and its hooks cost as much
    as a request's own work even with nothing to limit) and Flask-Login's remember-me cookie
    (the API opens no session and sets no cookie). The hooks each registry gained in the block
    become ONE hook that returns at once under /api/: Flask pays its cost per hook on every
    request."""
    from .api import is_api_request

    registries = ((app.before_request_funcs, _before),
                  (app.after_request_funcs, _after),
                  (app.teardown_request_funcs, _teardown))
    known = [list(registry.get(None, [])) for registry, _combine in registries]
    yield
    for (registry, combine), before in zip(registries, known, strict=True):
        hooks = registry.get(None, [])
        added = [hook for hook in hooks if hook not in before]
        if added:
            at = hooks.index(added[0])
            hooks[:] = [hook for hook in hooks if hook not in added]
            hooks.insert(at, combine(added, is_api_request))


def _before(hooks, is_api_request):
    def pages_before_request():
        if not is_api_request(request.path):
            for hook in hooks:
                answer = hook()
                if answer is not None:
                    return answer
        return None

    return pages_before_request


def _after(hooks, is_api_request):  # as Flask runs a registry's after_request hooks: last first
    def pages_after_request(response):
        if not is_api_request(request.path):
            for hook in reversed(hooks):
                response = hook(response)
        return response

    return pages_after_request


def _teardown(hooks, is_api_request):
    def pages_teardown_request(exc=None):
        if not is_api_request(request.path):
            for hook in reversed(hooks):
                hook(exc)

    return pages_teardown_request


class _Flask(Flask):
    def ensure_sync(self, func):
        """Flask asks this of every hook and view on every request; a plain function that is
        not a coroutine function is answered without inspect's general path."""
        code = getattr(func, "__code__", None)
        if (code is not None and not code.co_flags & CO_COROUTINE
                and not hasattr(func, "_is_coroutine_marker")):
            return func
        return super().ensure_sync(func)
