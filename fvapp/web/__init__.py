"""What the browser blueprints share: HTMX answers (htmx), the signed-in user's current
workspace (context), the guard against acting on another tab's workspace (guard), and the
template filters (filters). `register` wires the template side into the app."""

from __future__ import annotations

from flask import request

from . import filters
from .context import current_context
from .guard import form_guard


def register(app) -> None:
    filters.register(app)
    app.add_template_global(form_guard, "form_guard")

    @app.context_processor
    def _context():
        ctx = current_context() if request.endpoint and request.endpoint != "static" else None
        return {"ctx": ctx}
