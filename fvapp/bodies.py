"""Request bodies, read whole or refused (SPEC §11): 413 whenever a body is over its limit,
whether it came with Content-Length or chunked (Transfer-Encoding: chunked, no length).

Werkzeug refuses a Content-Length over `request.max_content_length` before reading a byte. A
chunked body has no length to check: Werkzeug reads it through a LimitedStream that stops at the
limit, and `get_data()` then returns the first `limit` bytes as if they were the whole body (only
a further read would raise). So the body is read with a limit one byte higher: more than `limit`
bytes came, the body is over it. Every reader of a body goes through `read`: the REST API's JSON
bodies (fvapp/api/operations.py), MCP (fvapp/api/mcp.py), leak reports with their own larger
limit (fvapp/api/secret_scanning.py), and the pages' forms (`init_app`: before any other hook
reads the form, CSRF's included; the form is then parsed from the body read here).
"""

from __future__ import annotations

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def read(limit: int | None = None) -> bytes:
    """The request's whole body; RequestEntityTooLarge (413) if it is over `limit` bytes
    (MAX_CONTENT_LENGTH unless given), however it was sent. Kept on the request (get_data's
    cache), so the form parser and get_json see the same bytes."""
    if limit is None:
        limit = current_app.config["MAX_CONTENT_LENGTH"]
    request.max_content_length = limit + 1  # Flask 3.1: this request's own limit
    data = request.get_data()
    if len(data) > limit:
        raise RequestEntityTooLarge()
    return data


def init_app(app: Flask) -> None:
    """Pages: a form sent chunked is read (or refused) here, before anything parses it."""

    @app.before_request
    def read_page_body() -> None:
        if request.method in WITH_BODY:
            read()
