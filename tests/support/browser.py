"""A person's browser as a test client (CSRF token included), and SPEC §6's demo table."""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask import has_app_context

from fvapp.cli import DEMO_PASSWORD
from fvapp.extensions import db


class Demo:
    """The seeded people and workspaces by name, and reads of the database for assertions.
    Inside an app context a read uses that context's session; outside one (a test that sends
    requests holds none) it reads in a context of its own and returns rows detached: their
    columns (id, name, revoked_at, …) are loaded, their relationships are not."""

    password = DEMO_PASSWORD

    def __init__(self, app):
        self.app = app

    def scalar(self, query):
        if has_app_context():
            return db.session.scalar(query)
        with self.app.app_context():
            return db.session.scalar(query)

    def get(self, model, ident):
        return self.scalar(sa.select(model).where(model.id == ident))

    def user(self, email):
        from fvapp.models import User

        return self.scalar(sa.select(User).where(User.email == email))

    def workspace(self, name):
        from fvapp.models import Workspace

        return self.scalar(sa.select(Workspace).where(Workspace.name == name))

    @property
    def acme(self):
        return self.workspace("Acme Analytics")

    @property
    def fox(self):
        return self.workspace("Fox Free")


CSRF_INPUT = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
CSRF_HEADER = re.compile(r'"X-CSRFToken": "([^"]+)"')


class Browser:
    """A test client that behaves like a person's browser: it carries the CSRF token."""

    def __init__(self, client):
        self.client = client
        self.token = None

    def refresh_token(self, path="/login"):
        page = self.client.get(path)
        found = CSRF_HEADER.search(page.text) or CSRF_INPUT.search(page.text)
        self.token = found.group(1) if found else None
        return self.token

    def login(self, email, password=DEMO_PASSWORD):
        self.refresh_token("/login")
        response = self.client.post(
            "/login", data={"email": email, "password": password, "csrf_token": self.token}
        )
        if response.status_code == 303:
            self.refresh_token("/")
        return response

    def get(self, path, htmx=False, **kw):
        headers = kw.pop("headers", {})
        if htmx:
            headers["HX-Request"] = "true"
        return self.client.get(path, headers=headers, **kw)

    def post(self, path, data=None, htmx=False, csrf=True, **kw):
        headers = kw.pop("headers", {})
        data = dict(data or {})
        if htmx:
            headers["HX-Request"] = "true"
            if csrf:
                headers["X-CSRFToken"] = self.token
        elif csrf:
            data.setdefault("csrf_token", self.token)
        return self.client.post(path, data=data, headers=headers, **kw)

    def switch(self, workspace_id):
        return self.post("/workspace", {"workspace_id": str(workspace_id)})
