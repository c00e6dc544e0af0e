"""HTMX: the same URL answers a page or its fragment, and the server drives the UI by headers."""

from __future__ import annotations

import json

from flask import make_response, render_template, request


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def page_or_fragment(page: str, fragment: str, status: int = 200, /, **context):
    """The same URL answers a whole page, or only its fragment when HTMX asks (Vary set)."""
    template = fragment if is_htmx() else page
    return render_template(template, **context), status


def hx(response, *, trigger: dict | str | None = None, retarget=None, reswap=None):
    """Let the server drive the UI: one place that writes HX-* response headers."""
    if trigger:
        response.headers["HX-Trigger"] = (
            json.dumps(trigger) if isinstance(trigger, dict) else trigger
        )
    if retarget:
        response.headers["HX-Retarget"] = retarget
    if reswap:
        response.headers["HX-Reswap"] = reswap
    return response


def hx_redirect(location: str, status: int = 204):
    """Make htmx load `location` as a whole page (it ignores the headers of a 3xx answer)."""
    response = make_response("", status)
    response.headers["HX-Redirect"] = location
    return response
