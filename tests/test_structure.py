"""The shape the code keeps: one way to commit, helpers that never commit for their caller, one
mapping from service errors to pages, a browser layer that does not lean on the API package,
layers that import only downwards, limits written once, a Settings navigation whose sections
declare their own pages, and no reach into the dependencies' private parts."""

import ast
import json
import re
import uuid
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy import event, select, update

import fvapp
from fvapp import errors
from fvapp.extensions import db
from fvapp.models import Membership, User
from fvapp.services import keys, workspaces
from fvapp.services.errors import DomainError, Forbidden, NotFound
from fvapp.services.transaction import atomic, atomic_statement, has_pending_changes, write
from fvapp.settings import nav

PACKAGE = Path(fvapp.__file__).parent
ROOT = PACKAGE.parent
BROWSER_LAYER = ("web", "settings", "auth", "dashboard")
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


def test_a_write_statement_is_a_pending_change_until_the_transaction_ends(app_context, demo):
    """transaction.write (the initiatives' INSERT/UPDATE … RETURNING, on the session's
    connection: no ORM event sees it) still marks the transaction as holding a change."""
    from fvapp.services.initiatives import update_initiative

    with pytest.raises(RuntimeError, match="uncommitted"), atomic():
        write(update(User).where(User.email == "ava@acme.test").values(name="Changed"), {})
        assert has_pending_changes()
        workspaces.lock_workspace(demo.acme.id)
    assert not has_pending_changes()
    assert db.session.scalar(select(User.name).where(User.email == "ava@acme.test")) != "Changed"
    with pytest.raises(NotFound):
        update_initiative(demo.acme.id, "not-an-id", title="x")
    assert not has_pending_changes()


def test_a_one_statement_unit_of_work_joins_a_callers_block_and_else_commits_alone(
        app_context, demo):
    """transaction.atomic_statement (the initiatives' writes): inside `with atomic():` it is
    part of that block (the block's failure undoes it); outside one it is committed when it
    returns (a rollback of the session cannot undo it: autocommit on PostgreSQL, its own
    atomic() elsewhere)."""
    renamed = update(User).where(User.email == "ava@acme.test").values(name="Joined")
    with pytest.raises(RuntimeError, match="the caller fails"), atomic():
        atomic_statement(renamed.returning(User.name), {})
        assert has_pending_changes()
        raise RuntimeError("the caller fails")
    assert db.session.scalar(select(User.name).where(User.email == "ava@acme.test")) != "Joined"

    rows = atomic_statement(renamed.values(name="Alone").returning(User.name), {})
    assert [row.name for row in rows] == ["Alone"]
    db.session.rollback()
    assert not has_pending_changes()
    assert db.session.scalar(select(User.name).where(User.email == "ava@acme.test")) == "Alone"


def test_a_one_statement_write_in_a_block_sees_the_blocks_objects(app_context, demo):
    """Joining a caller's block, the statement runs after the block's own objects are flushed:
    an initiative of a workspace made in the same block (its foreign key), then renamed."""
    from fvapp.models import Workspace
    from fvapp.services.initiatives import create_initiative, update_initiative

    workspace_id = uuid.uuid4()
    with atomic():
        db.session.add(Workspace(id=workspace_id, name="Made in the block", plan="pro"))
        made = create_initiative(workspace_id, None, "First", None)
        renamed = update_initiative(workspace_id, made.id, title="Renamed")
    assert renamed.title == "Renamed"
    assert db.session.scalar(select(Workspace.name).where(Workspace.id == workspace_id))


def test_a_one_statement_write_after_a_read_takes_no_second_connection(app_context, demo):
    """A page's session that has read holds a pool connection: the write goes over that one,
    in `with atomic():`, not over a second connection in autocommit."""
    from fvapp.services.initiatives import create_initiative

    assert db.session.scalar(select(Membership.role).limit(1))  # the session reads first
    checkouts = []

    def checkout(*args):
        checkouts.append(args)

    event.listen(db.engine, "checkout", checkout)
    try:
        create_initiative(demo.acme.id, None, "After a read", None)
    finally:
        event.remove(db.engine, "checkout", checkout)
    assert checkouts == [], "a second connection was taken from the pool"
    assert not db.session().in_transaction()  # committed, as any write


def test_a_read_before_the_lock_is_fine(app_context, demo):
    assert workspaces.membership(demo.user("ava@acme.test").id, demo.acme.id) is not None
    created = keys.create_key(demo.acme.id, demo.user("ava@acme.test").id, "After a read")
    assert created.key.id is not None and not has_pending_changes()


# -- 2. one mapping from service errors to pages --------------------------------------------


def _hand_made_404s(path: Path) -> list[int]:
    """`except NotFound/Forbidden:` blocks that answer abort(...) themselves."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            caught = {n.id for n in ast.walk(node.type) if isinstance(n, ast.Name)}
            aborts = any(isinstance(c, ast.Call) and getattr(c.func, "id", "") == "abort"
                         for stmt in node.body for c in ast.walk(stmt))
            if caught & {"NotFound", "Forbidden"} and aborts:
                found.append(node.lineno)
    return found


def test_no_view_translates_service_errors_by_hand():
    offenders = {str(p.relative_to(PACKAGE)): lines for p in _modules(*BROWSER_LAYER)
                 if (lines := _hand_made_404s(p))}
    assert offenders == {}, "let NotFound/Forbidden through: fvapp/errors.py answers the page"


def test_a_page_hides_what_a_service_refuses():
    assert errors.page_status_for_domain(NotFound("Key not found")) == 404
    assert errors.page_status_for_domain(Forbidden("Owners only")) == 404  # existence not revealed
    assert errors.page_status_for_domain(DomainError("Enter a name.", field="name")) is None


def test_a_service_forbidden_in_a_page_is_the_404_page(browser, demo, monkeypatch):
    """The role or plan changed between the section's gate and the service's own check."""
    def refuse(*args, **kwargs):
        raise Forbidden("Only owners and admins of a paid workspace can manage API keys.")

    monkeypatch.setattr(keys, "create_key", refuse)
    browser.login("ava@acme.test")
    for htmx in (False, True):
        response = browser.post("/settings/api-keys", {"name": "Raced"}, htmx=htmx)
        assert response.status_code == 404, htmx
        assert errors.MESSAGES[404] in unescape(response.text)
        assert "paid workspace" not in response.text  # the page says no more than a 404


def test_the_request_failure_messages_come_from_the_server(browser):
    page = browser.get("/login")
    sent = re.search(r"data-request-failures='([^']*)'", page.text)
    assert sent and json.loads(unescape(sent.group(1))) == errors.REQUEST_FAILURES
    script = (ROOT / "static" / "js" / "app.js").read_text()
    assert [m for m in errors.REQUEST_FAILURES.values() if m[:30] in script] == []
    assert "data-request-failures" in script


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
                 for p in _modules(*BROWSER_LAYER)}
    assert {p: n for p, n in offenders.items() if n} == {}
    assert "fvapp.paths.API_PREFIX" in _imports(PACKAGE / "settings" / "api_keys.py")


FOUNDATIONS = {"paths", "formatting", "extensions", "db_setup", "security", "bodies", "ratelimit", "config",
               "models"}
CROSS_CUTTING_HTTP = {"health", "errors", "session", "request_log"}
MAY_IMPORT = {  # docs/architecture.md's layers: each imports only from the layers below it
    "services": FOUNDATIONS | {"services"},
    "usage": FOUNDATIONS | {"services"} | CROSS_CUTTING_HTTP | {"usage"},
    "leaks": FOUNDATIONS | {"services"} | CROSS_CUTTING_HTTP | {"leaks"},
}


def test_the_domain_and_the_features_beside_it_import_only_the_layers_below():
    """services/ imports no HTTP module and neither usage/ nor leaks/; usage/ and leaks/ import no
    page, browser or API module (the pages and the API app import them)."""
    found = {}
    for room, allowed in MAY_IMPORT.items():
        for path in _modules(room):
            above = {name.split(".")[1] for name in _imports(path) if name.startswith("fvapp.")} - allowed
            if above:
                found[str(path.relative_to(PACKAGE))] = sorted(above)
    assert found == {}
    assert "fvapp.leaks" in _imports(PACKAGE / "api" / "secret_scanning.py")  # the endpoint sits above
    assert "fvapp.usage" in _imports(PACKAGE / "settings" / "api_keys.py")


# -- 5. limits live once --------------------------------------------------------------------


def _number_literals(value: int) -> list[str]:
    return [f"{p.relative_to(PACKAGE)}:{node.lineno}" for p in _modules()
            for node in ast.walk(ast.parse(p.read_text()))
            if isinstance(node, ast.Constant) and node.value == value]


def test_the_email_limit_is_written_once():
    assert [where.split(":")[0] for where in _number_literals(254)] == ["models.py"]


def test_the_services_take_column_lengths_from_the_models():
    """A length a column holds is written once, in models.py (NAME_MAX, AGENT_MAX, REASON_MAX,
    …): the services neither check a length (max_length=) nor cut text ([:n]) by a number."""
    found = []
    for path in _modules("services"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.keyword) and node.arg == "max_length"
                    and isinstance(node.value, ast.Constant)):
                found.append(f"{path.name}:{node.value.lineno} max_length={node.value.value}")
            if (isinstance(node, ast.Slice) and isinstance(node.upper, ast.Constant)
                    and isinstance(node.upper.value, int) and node.upper.value > 1):
                found.append(f"{path.name}:{node.upper.lineno} [:{node.upper.value}]")
    assert found == []


def test_templates_take_limits_and_timestamps_from_one_place():
    templates = {str(p.relative_to(ROOT)): p.read_text() for p in sorted((ROOT / "templates").rglob("*.html"))}
    assert {p for p, text in templates.items() if "<time" in text} == {"templates/macros/forms.html"}
    written = r"\b254\b|10,000|\d+ characters|maxlength=\"?\d"
    assert {p for p, text in templates.items() if re.search(written, text)} == set()


def test_the_dashboard_hints_say_the_services_limits(browser, demo):
    from fvapp.services import initiatives

    browser.login("ava@acme.test")
    page = browser.get("/").text
    assert f"Up to {initiatives.TITLE_MAX} characters." in page
    assert f"Optional, up to {initiatives.DESCRIPTION_MAX:,} characters." in page
    assert f'maxlength="{initiatives.TITLE_MAX}"' in page


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


# -- 7. public, documented APIs of every dependency only -----------------------------------------

# Documented although underscored: NamedTuple's own methods, Werkzeug's LocalProxy accessor.
DOCUMENTED_UNDERSCORED = {"_fields", "_make", "_replace", "_asdict", "_get_current_object"}
FRAMEWORK_CLASSES = {"Flask", "Request", "Response", "Headers", "EnvironHeaders"}
FRAMEWORK_METHODS = {"ensure_sync", "get_wsgi_headers"}


def _own_names(tree: ast.Module) -> set[str]:
    """The names a module binds to its own things: what it defines, and what it imports from
    fvapp (relative imports)."""
    names = {"self", "cls"}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(
                "fvapp")):
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.asname or alias.name.split(".")[0] for alias in node.names
                         if alias.name.startswith("fvapp"))
    return names


def _private_reaches(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    own, found = _own_names(tree), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            name = node.attr
            private = name.startswith("_") and not (name.startswith("__") and name.endswith("__"))
            if (private and name not in DOCUMENTED_UNDERSCORED
                    and not (isinstance(node.value, ast.Name) and node.value.id in own)):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} .{name}")
        elif isinstance(node, ast.ClassDef):
            bases = {base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
                     for base in node.bases}
            if bases & FRAMEWORK_CLASSES:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} class {node.name}"
                             f"({', '.join(sorted(bases & FRAMEWORK_CLASSES))})")
        elif (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
              and node.name in FRAMEWORK_METHODS):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} def {node.name}")
    return found


def test_fvapp_uses_only_the_public_apis_of_its_dependencies():
    """No `x._name` on anything but the code's own objects (self, cls, what fvapp defines), no
    subclass of Flask or of Werkzeug's Request/Response/Headers, no override of the methods
    Flask and Werkzeug run per request."""
    found = [line for path in _modules() for line in _private_reaches(path)]
    assert found == []


def test_the_private_check_sees_what_it_must(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from flask import Flask, Response\n"
        "from . import usage\n"
        "class Mine(Response):\n"
        "    def get_wsgi_headers(self, environ):\n"
        "        return self._own\n"
        "def f(engine, headers, row):\n"
        "    engine.pool._invalidate(None)\n"
        "    row._asdict()\n"
        "    return usage._aggregator, headers._list, row.__class__\n"
    )
    found = [line.split(" ", 1)[1] for line in _private_reaches_at(sample)]
    assert found == ["class Mine(Response)", "def get_wsgi_headers", "._invalidate", "._list"]


def _private_reaches_at(path: Path) -> list[str]:
    """_private_reaches for a file outside the package (its paths as given)."""
    global ROOT
    saved, ROOT = ROOT, path.parent
    try:
        return sorted(_private_reaches(path), key=lambda line: int(line.split(":")[1].split()[0]))
    finally:
        ROOT = saved
