"""A person's browser as a test client (CSRF token included), the same over real HTTP (WebUser,
for a running server), and SPEC §6's demo table."""

from __future__ import annotations

import re

import requests
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


FORM_ONCE = re.compile(r'name="form_once" type="hidden" value="([^"]+)"')
REVEALED = re.compile(r'data-new-row="key-([0-9a-f-]{36})".*?<code id="new-key"[^>]*>(fvk_live_\w+)</code>', re.S)


class WebUser:
    """A person's browser over HTTP (a requests.Session: cookies, keep-alive): it reads the CSRF
    token from each page it loads and sends it with its forms, as the pages' forms do."""

    def __init__(self, base_url: str, timeout: float = 30):
        self.base, self.timeout = base_url, timeout
        self.http = requests.Session()
        self.token: str | None = None

    def get(self, path: str, **kw) -> requests.Response:
        response = self.http.get(self.base + path, timeout=self.timeout, allow_redirects=False, **kw)
        found = CSRF_HEADER.search(response.text) or CSRF_INPUT.search(response.text)
        if found:
            self.token = found.group(1)
        return response

    def post(self, path: str, data: dict | None = None, **kw) -> requests.Response:
        data = {"csrf_token": self.token, **(data or {})}
        return self.http.post(self.base + path, data=data, timeout=self.timeout, allow_redirects=False, **kw)

    def login(self, email: str, password: str) -> requests.Response:
        self.get("/login")
        response = self.post("/login", {"email": email, "password": password})
        if response.status_code == 303:
            self.get("/settings/api-keys")  # the signed-in session's token
        return response

    def logout(self) -> requests.Response:
        return self.post("/logout")

    def create_key(self, name: str) -> tuple[requests.Response, str | None, str | None]:
        """Settings → API Keys → Create key; (the answer, the key's id, the clear key)."""
        form = self.get("/settings/api-keys/new")
        once = FORM_ONCE.search(form.text)
        response = self.post("/settings/api-keys", {"name": name, "form_once": once.group(1) if once else ""})
        revealed = REVEALED.search(response.text)
        return response, *(revealed.groups() if revealed else (None, None))

    def revoke_key(self, key_id: str) -> requests.Response:
        return self.post(f"/settings/api-keys/{key_id}/revoke")
