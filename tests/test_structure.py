"""The shape the code keeps (issue 10): one way to commit, helpers that never commit for their
caller, a browser layer that does not lean on the API package, and a Settings navigation whose
sections declare their own pages."""

import ast
import re
from pathlib import Path

import pytest
from sqlalchemy import select

import fvapp
from fvapp.extensions import db
from fvapp.models import Membership, User
from fvapp.services import keys, workspaces
from fvapp.services.transaction import has_pending_changes
from fvapp.settings import nav

PACKAGE = Path(fvapp.__file__).parent
THE_ONE_COMMIT = PACKAGE / "services" / "transaction.py"


def _modules(*under: str):
    for folder in under or ("",):
        yield from sorted((PACKAGE / folder).rglob("*.py"))


def _calls(path: Path, method: str) -> list[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == method]


# -- 1. one way to run a transaction ---------------------------------------------------------


def test_nothing_in_fvapp_commits_but_atomic():
    offenders = {str(p.relative_to(PACKAGE)): lines for p in _modules()
                 if p != THE_ONE_COMMIT and (lines := _calls(p, "commit"))}
    assert offenders == {}, "write through `with atomic():` (services/transaction.py)"
    assert _calls(THE_ONE_COMMIT, "commit"), "the scan must see the one commit it allows"


def test_atomic_is_used_one_way():
    """`with atomic():`, never `@atomic()` as a decorator."""
    decorated = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                decorated += [f"{path.name}:{node.lineno}" for d in node.decorator_list
                              if isinstance(d, ast.Call) and getattr(d.func, "id", "") == "atomic"]
    assert decorated == []


def test_lock_workspace_refuses_pending_changes_instead_of_committing_them(app_context, demo):
    db.session.add(User(email="pending@acme.test", name="Pending", password_hash="x"))
    assert has_pending_changes()
    with pytest.raises(RuntimeError, match="uncommitted"):
        workspaces.lock_workspace(demo.acme.id)
    db.session.rollback()
    assert db.session.scalar(select(User).where(User.email == "pending@acme.test")) is None


def test_lock_workspace_refuses_flushed_changes_too(app_context, demo):
    db.session.add(User(email="flushed@acme.test", name="Flushed", password_hash="x"))
    db.session.flush()
    assert not db.session.new and has_pending_changes()
    with pytest.raises(RuntimeError):
        keys.create_key(demo.acme.id, demo.user("ava@acme.test").id, "Would commit the user")
    assert db.session.scalar(select(User).where(User.email == "flushed@acme.test")) is None
    assert not has_pending_changes()


def test_a_read_before_the_lock_is_fine(app_context, demo):
    assert workspaces.membership(demo.user("ava@acme.test").id, demo.acme.id) is not None
    created = keys.create_key(demo.acme.id, demo.user("ava@acme.test").id, "After a read")
    assert created.key.id is not None and not has_pending_changes()


# -- 4. the browser layer stands on its own --------------------------------------------------


def _imports(path: Path) -> set[str]:
    found = set()
    package = ".".join(("fvapp", *path.relative_to(PACKAGE).parent.parts))
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level \
                else []
            name = ".".join([*base, node.module] if node.module else base)
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_browser_blueprints_do_not_import_the_api_package():
    offenders = {str(p.relative_to(PACKAGE)): sorted(n for n in _imports(p)
                                                     if n == "fvapp.api" or n.startswith("fvapp.api."))
                 for p in _modules("web", "settings", "auth", "app")}
    assert {p: n for p, n in offenders.items() if n} == {}
    assert "fvapp.paths.API_PREFIX" in _imports(PACKAGE / "settings" / "api_keys.py")


# -- 6. each Settings section declares its pages ---------------------------------------------


def test_every_settings_page_belongs_to_exactly_one_section(app):
    endpoints = {r.endpoint for r in app.url_map.iter_rules()
                 if r.endpoint.startswith("settings.") and r.endpoint != "settings.index"}
    owners = {e: [s.label for s in nav.ALL_SECTIONS if s.is_current(e)] for e in endpoints}
    assert {e: o for e, o in owners.items() if len(o) != 1} == {}
    assert set().union(*(s.endpoints for s in nav.ALL_SECTIONS)) == endpoints


def _current(html: str) -> list[str]:
    menu = re.search(r'<nav class="settings-nav".*?</nav>', html, re.S).group(0)
    return re.findall(r'<a [^>]*aria-current="page"[^>]*>([^<]*)</a>', menu)


def test_the_nav_marks_the_section_current_on_its_sub_pages(browser, demo):
    adam = demo.scalar(select(Membership).where(
        Membership.user_id == demo.user("adam@acme.test").id,
        Membership.workspace_id == demo.acme.id))
    browser.login("ava@acme.test")
    pages = [
        ("General", browser.get("/settings/general"), 200),
        ("General", browser.post("/settings/general", {"name": ""}), 422),  # rename_workspace
        ("Members", browser.get("/settings/members"), 200),
        ("Members", browser.get(f"/settings/members/{adam.id}/role"), 200),  # role_dialog
        ("Members", browser.get(f"/settings/members/{adam.id}/remove"), 200),  # remove_dialog
        ("Subscription", browser.get("/settings/subscription"), 200),
        ("Subscription", browser.get("/settings/subscription/change?plan=team"), 200),  # plan_dialog
        ("API Keys", browser.get("/settings/api-keys/new"), 200),
        ("API Keys", browser.get("/settings/api-keys/scanner"), 200),
        ("Activity", browser.get("/settings/activity"), 200),
    ]
    for label, response, status in pages:
        assert response.status_code == status, (label, response.request.path)
        assert _current(response.text) == [label], (label, response.request.path)
