"""The MCP server at /api/mcp (SPEC §8), driven by the `mcp` SDK's own client over real HTTP
against a live server on 127.0.0.1 (a werkzeug server thread running the real app)."""

from __future__ import annotations

import asyncio
import json
import os
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest
import requests
from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy.exc import OperationalError

from fvapp.api import mcp as mcp_server
from fvapp.api.mcp import TOOLS, manifest_document
from fvapp.extensions import db
from fvapp.services import initiatives, keys, plans, workspaces
from tests.support.api import Api, assert_envelope, bearer, mint_key
from tests.support.browser import Browser
from tests.support.mcp import live, post_initialize
from tests.support.tracing import engine_of, sql_statements

MCP_HEADERS = {"Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-06-18"}
TOOL_NAMES = {"whoami", "list_initiatives", "get_initiative", "create_initiative",
              "update_initiative", "search_initiatives"}


@pytest.fixture
def url(app):
    with live(app) as base:
        yield base


@pytest.fixture
def ava(demo):
    return demo.user("ava@acme.test")


def mcp_session(base: str, key: str | None):
    """Run `work(session)` with an initialized SDK ClientSession; returns its result."""

    def run(work):
        async def main():
            headers = bearer(key) if key else {}
            async with (
                httpx2.AsyncClient(headers=headers, timeout=10) as http,
                streamable_http_client(base + "/api/mcp", http_client=http) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                return await work(session)

        # On a thread of its own: Playwright's sync API (tests/e2e) may have left an event loop
        # running on this one, where asyncio.run() is refused.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, main()).result()

    return run


def call(base, key, name, arguments=None):
    return mcp_session(base, key)(lambda s: s.call_tool(name, arguments or {}))


def test_the_sdk_client_lists_and_calls_every_tool(url, app, demo, ava):
    key = mint_key(demo.app, demo.acme, ava)
    listed = mcp_session(url, key)(lambda s: s.list_tools())
    assert {t.name for t in listed.tools} == TOOL_NAMES

    me = call(url, key, "whoami")
    assert not me.is_error
    assert me.structured_content["user"]["email"] == "ava@acme.test"
    assert me.structured_content["workspace"]["name"] == "Acme Analytics"
    assert me.content[0].text

    created = call(url, key, "create_initiative",
                   {"title": "  Launch MCP  ", "description": "Agents welcome", "org_id": "x"})
    assert not created.is_error, created.content
    item = created.structured_content
    assert item["title"] == "Launch MCP"  # the service's rule: trimmed

    def rest(path):  # the REST API of the same live server
        return requests.get(url + "/api/v1" + path, headers=bearer(key), timeout=10).json()

    assert rest(f"/initiatives/{item['id']}")["data"] == item  # the same §5 shape

    got = call(url, key, "get_initiative", {"id": item["id"]})
    assert got.structured_content == item

    listed = call(url, key, "list_initiatives", {"limit": 5})
    assert [i["id"] for i in listed.structured_content["items"]] == [item["id"]]
    assert listed.structured_content["pagination"] == {"limit": 5, "offset": 0,
                                                       "has_more": False}

    found = call(url, key, "search_initiatives", {"query": "AGENTS"})
    assert [i["id"] for i in found.structured_content["items"]] == [item["id"]]
    assert call(url, key, "search_initiatives", {"query": "%"}).structured_content["items"] == []

    updated = call(url, key, "update_initiative",
                   {"id": item["id"], "title": "Launched", "archived": True})
    assert not updated.is_error, updated.content
    assert updated.structured_content["archived"] is True
    data = rest(f"/initiatives/{item['id']}")["data"]
    assert data["title"] == "Launched" and data["archived"] is True
    archived = call(url, key, "list_initiatives", {"archived": True})
    assert [i["title"] for i in archived.structured_content["items"]] == ["Launched"]

    call(url, key, "create_initiative", {"title": "Seen on the dashboard"})
    browser = Browser(app.test_client())
    browser.login("ava@acme.test")
    assert "Seen on the dashboard" in browser.get("/").get_data(as_text=True)


def test_bad_arguments_and_foreign_or_unknown_ids_are_tool_errors(url, app, demo, ava):
    key = mint_key(demo.app, demo.acme, ava)
    fred = demo.user("fred@fox.test")
    with app.app_context():
        plans.set_plan(demo.fox.id, "pro", fred.id)
    foreign = Api(app.test_client(), mint_key(demo.app, demo.fox, fred)).post(
        "/initiatives", json={"title": "Fox secret"}).get_json()["data"]["id"]
    cases = [
        ("get_initiative", {"id": foreign}),
        ("get_initiative", {"id": "00000000-0000-4000-8000-000000000000"}),
        ("get_initiative", {"id": "not-a-uuid"}),
        ("get_initiative", {}),
        ("update_initiative", {"id": foreign, "title": "Mine now"}),
        ("create_initiative", {"title": "   "}),
        ("create_initiative", {"title": "x" * 201}),
        ("create_initiative", {"title": 5}),
        ("create_initiative", {"title": "ok", "colour": "red"}),
        ("list_initiatives", {"limit": 0}),
        ("list_initiatives", {"archived": "yes"}),
        ("search_initiatives", {"query": ""}),
    ]
    for name, arguments in cases:
        result = call(url, key, name, arguments)
        assert result.is_error, (name, arguments)
        assert result.content[0].text, (name, arguments)
    listed = requests.get(url + "/api/v1/initiatives", headers=bearer(key), timeout=10).json()
    assert listed["data"]["items"] == []


def test_an_unknown_tool_is_a_json_rpc_error_not_a_tool_result(url, app, demo, ava):
    """MCP, Tools › Error handling: an unknown tool is a protocol error, -32602 (the SDK's
    client raises it); bad arguments to a known tool stay isError results (above)."""
    key = mint_key(demo.app, demo.acme, ava)

    async def unknown(session):
        try:
            return await session.call_tool("no_such_tool", {"id": "x"})
        except MCPError as raised:
            return raised

    error = mcp_session(url, key)(unknown)
    assert isinstance(error, MCPError), error
    assert error.code == -32602 and "no_such_tool" in error.message

    answer = requests.post(url + "/api/mcp", timeout=10, headers={
        **bearer(key), "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-06-18"}, json={
        "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "no_such_tool", "arguments": {}}})
    body = answer.json()
    assert answer.status_code == 200 and "result" not in body
    assert body["id"] == 7 and body["error"]["code"] == -32602

    still = call(url, key, "get_initiative", {})  # a known tool, bad arguments: a result
    assert still.is_error and still.content[0].text


def test_a_tool_that_fails_is_answered_as_rest_would_be_without_its_text(app, demo, ava,
                                                                         monkeypatch):
    """What a tool raises that is neither a result nor a refusal is answered by the app's own
    handlers, as for REST: an unavailable database 503 with Retry-After, anything else 500;
    in the envelope, and the exception's text (SQL, addresses) never in the answer."""
    key = mint_key(demo.app, demo.acme, ava)
    client = app.test_client()
    item_id = Api(client, key).post("/initiatives", json={"title": "x"}).get_json()["data"]["id"]
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "get_initiative", "arguments": {"id": item_id}}}
    for raised, status, code in [
        (OperationalError("SELECT secret FROM hidden", {}, Exception("host 10.0.0.9")), 503,
         "SERVICE_UNAVAILABLE"),
        (RuntimeError("SELECT secret FROM hidden"), 500, "INTERNAL_ERROR"),
    ]:
        def fail(*args, raised=raised, **kwargs):
            raise raised

        monkeypatch.setattr(initiatives, "get_initiative", fail)
        answer = client.post("/api/mcp", headers={**bearer(key), **MCP_HEADERS}, json=request)
        assert_envelope(answer, status, code)
        assert "secret" not in answer.get_data(as_text=True)
        assert ("Retry-After" in answer.headers) == (status == 503)
    monkeypatch.undo()
    assert tool_call(client, key, "get_initiative", {"id": item_id})["structuredContent"]["id"] \
        == item_id


# -- one operation, two surfaces -----------------------------------------------------------

def tool_call(client, key, name, arguments):
    """One stateless tools/call, as an SDK client sends it after initialize: its result."""
    response = client.post("/api/mcp", headers={**bearer(key), **MCP_HEADERS}, json={
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": name, "arguments": arguments}})
    assert response.status_code == 200, response.get_data()
    return response.get_json()["result"]


def test_each_tool_runs_the_statements_and_gives_the_data_of_its_rest_operation(app, demo, ava):
    key = mint_key(demo.app, demo.acme, ava)
    client, api, engine = app.test_client(), Api(app.test_client(), key), engine_of(app)
    with app.app_context():
        for n in range(30):
            initiatives.create_initiative(demo.acme.id, ava.id, f"Item {n}", "words")
    item_id = api.post("/initiatives", json={"title": "Both ways"}).get_json()["data"]["id"]

    def rest(send, status=200):
        with sql_statements(engine) as seen:
            response = send()
        assert_envelope(response, status)
        return response.get_json()["data"], seen

    def tool(name, arguments):
        with sql_statements(engine) as seen:
            result = tool_call(client, key, name, arguments)
        assert not result.get("isError"), result
        return result["structuredContent"], seen

    pairs = [
        (lambda: api.get("/me"), ("whoami", {})),
        (lambda: api.get(f"/initiatives/{item_id}"), ("get_initiative", {"id": item_id})),
        (lambda: api.get("/initiatives?limit=50"), ("list_initiatives", {"limit": 50})),
        (lambda: api.get("/initiatives?limit=5&offset=3"),
         ("list_initiatives", {"limit": 5, "offset": 3})),
        (lambda: api.patch(f"/initiatives/{item_id}", json={"archived": True}),
         ("update_initiative", {"id": item_id, "archived": False})),
        (lambda: api.patch(f"/initiatives/{item_id}", json={"title": "Renamed"}),
         ("update_initiative", {"id": item_id, "title": "Renamed again"})),
    ]
    for send, (name, arguments) in pairs:
        data, rest_statements = rest(send)
        structured, tool_statements = tool(name, arguments)
        assert tool_statements == rest_statements, name
        if name not in ("update_initiative",):
            assert structured == data, name
    created, rest_statements = rest(lambda: api.post("/initiatives", json={"title": "R"}), 201)
    made, tool_statements = tool("create_initiative", {"title": "M"})
    assert tool_statements == rest_statements
    assert made.keys() == created.keys()
    for made_one in (created, made):
        assert api.get(f"/initiatives/{made_one['id']}").get_json()["data"] == made_one
    assert tool("get_initiative", {"id": item_id})[0] == rest(
        lambda: api.get(f"/initiatives/{item_id}"))[0]


def test_the_sdks_session_manager_and_loop_are_made_once_per_process(app, demo, ava,
                                                                     monkeypatch):
    made = []
    real = mcp_server.StreamableHTTPSessionManager

    def counted(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(mcp_server, "StreamableHTTPSessionManager", counted)
    # as in a process that served none yet
    monkeypatch.setattr(mcp_server, "_runtime", None, raising=False)
    key = mint_key(demo.app, demo.acme, ava)
    client = app.test_client()
    for _ in range(3):
        assert tool_call(client, key, "whoami", {})["structuredContent"]["role"] == "owner"
    assert len(made) == 1
    runtime = mcp_server.runtime()
    assert runtime.manager is made[0] and not runtime.loop.is_closed()
    tool_call(client, key, "whoami", {})
    assert mcp_server.runtime() is runtime and len(made) == 1

    # A forked child makes its own (the parent's loop and selector are not its to use), and it
    # serves: an initialize through the child's session manager, no database needed.
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running the parent's cleanup
        try:
            os.close(read)
            child = mcp_server.runtime()
            status, _, content = child.serve(_initialize_scope(), INITIALIZE)
            report = {"fresh": child is not runtime and child.loop is not runtime.loop
                      and child.manager is not runtime.manager,
                      "status": status, "result": "result" in json.loads(content)}
            os.write(write, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        report = json.loads(pipe.read() or "{}")
    os.waitpid(pid, 0)
    assert report == {"fresh": True, "status": 200, "result": True}
    assert mcp_server.runtime() is runtime  # the parent keeps its own


INITIALIZE = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {},
    "clientInfo": {"name": "t", "version": "1"}}}).encode()


def _initialize_scope():
    headers = {"content-type": "application/json",
               "accept": "application/json, text/event-stream",
               "content-length": str(len(INITIALIZE))}
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": "/api/mcp", "raw_path": b"/api/mcp",
            "root_path": "", "query_string": b"",
            "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 0), "server": ("localhost", 0)}


def test_the_key_check_is_the_rest_one(url, app, demo, ava):
    assert_unauthorized = _unauthorized
    assert_unauthorized(post_initialize(url, {}))
    assert_unauthorized(post_initialize(url, bearer("fvk_live_nope")))

    key = mint_key(demo.app, demo.acme, ava)
    assert post_initialize(url, bearer(key)).status_code == 200
    with app.app_context():
        keys.revoke_key(demo.acme.id, keys.list_keys(demo.acme.id)[0].id, ava.id)
    assert_unauthorized(post_initialize(url, bearer(key)))

    adam = demo.user("adam@acme.test")
    adams = mint_key(demo.app, demo.acme, adam)
    assert post_initialize(url, bearer(adams)).status_code == 200
    with app.app_context():
        db.session.delete(workspaces.membership(adam.id, demo.acme.id))
        db.session.commit()
    assert_unauthorized(post_initialize(url, bearer(adams)))

    second = mint_key(demo.app, demo.acme, ava, "Second")
    with app.app_context():
        plans.set_plan(demo.acme.id, "free", ava.id)
    refused = post_initialize(url, bearer(second))
    assert refused.status_code == 403
    assert refused.json()["code"] == "PAID_PLAN_REQUIRED"
    with app.app_context():
        plans.set_plan(demo.acme.id, "pro", ava.id)
    assert post_initialize(url, bearer(second)).status_code == 200


def _unauthorized(response):
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    body = response.json()
    assert body["success"] is False and body["code"] == "UNAUTHORIZED"


def test_mcp_and_rest_share_one_rate_limit_budget(app_factory, app, demo, ava):
    limited = app_factory(API_RATE_LIMIT="4 per minute")
    key = mint_key(demo.app, demo.acme, ava)
    rest = Api(limited.test_client(), key)
    with live(limited) as base:
        assert rest.get("/me").status_code == 200
        assert rest.get("/initiatives").status_code == 200
        first = post_initialize(base, bearer(key))
        assert first.status_code == 200
        assert first.headers["X-RateLimit-Remaining"] == "1"
        assert post_initialize(base, bearer(key)).status_code == 200
        refused = post_initialize(base, bearer(key))
        assert_envelope_429(refused)
        assert rest.get("/me").status_code == 429


def assert_envelope_429(response):
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["code"] == "RATE_LIMITED"


def test_the_public_manifest_is_the_served_tools(url, demo, ava):
    manifest = requests.get(url + "/api/mcp", timeout=10)
    assert manifest.status_code == 200
    assert manifest.headers["Content-Type"].startswith("application/json")
    document = manifest.json()
    assert document == manifest_document()
    served = mcp_session(url, mint_key(demo.app, demo.acme, ava))(lambda s: s.list_tools())
    assert {t["name"]: t["inputSchema"] for t in document["tools"]} == {
        t.name: t.input_schema for t in served.tools}
    assert set(TOOLS) == TOOL_NAMES
    for schema in (t["inputSchema"] for t in document["tools"]):
        assert "org_id" in schema["properties"]

    stream = requests.get(url + "/api/mcp", timeout=10, headers={"Accept": "text/event-stream"})
    assert stream.status_code == 405
    assert stream.json()["success"] is False
    assert requests.delete(url + "/api/mcp", timeout=10).status_code == 405


def test_an_api_rest_client_cannot_reach_mcp_with_a_session_cookie(app, demo):
    browser = Browser(app.test_client())
    browser.login("ava@acme.test")
    response = browser.client.post("/api/mcp", json={"jsonrpc": "2.0", "id": 1,
                                                     "method": "tools/list"})
    assert_envelope(response, 401, "UNAUTHORIZED")


def test_the_api_keys_page_shows_a_working_mcp_client_config(url, app, demo, ava):
    import html
    import json
    import re

    browser = Browser(app.test_client())
    browser.login("ava@acme.test")
    page = browser.get("/settings/api-keys").get_data(as_text=True)
    block = re.search(r'<code id="mcp-config">(.*?)</code>', page, re.S)
    assert block, "no MCP config snippet"
    config = json.loads(html.unescape(block.group(1)))["mcpServers"]["fvapp"]
    assert config["url"] == "http://localhost/api/mcp"  # this deployment's URL
    assert config["headers"]["Authorization"] == "Bearer fvk_live_YOUR_KEY"  # a placeholder
    assert 'data-copy-target="mcp-config"' in page
    # The snippet's shape works: the same path and header on the live server, with a real key.
    key = mint_key(demo.app, demo.acme, ava)
    live_url = config["url"].replace("http://localhost", url)
    served = mcp_session(live_url.removesuffix("/api/mcp"), key)(lambda s: s.list_tools())
    assert {t.name for t in served.tools} == TOOL_NAMES


# -- the single exchange and the session manager -------------------------------------------

def _post(client, key, message, headers=None, raw=None):
    return client.post("/api/mcp", headers={**bearer(key), **MCP_HEADERS, **(headers or {})},
                       data=raw if raw is not None else json.dumps(message),
                       content_type=None if headers and "Content-Type" in headers
                       else "application/json")


def test_a_single_exchange_answers_what_the_session_manager_answers(app, demo, ava, monkeypatch):
    """The same requests answered twice, by the SDK's single-exchange driver and, with it turned
    off, by the session manager's stateless transport: the same status, headers and bytes."""
    key = mint_key(demo.app, demo.acme, ava)
    client = app.test_client()
    item_id = Api(client, key).post("/initiatives", json={"title": "Twice"}).get_json()["data"]["id"]

    def rpc(method, params=None, id_=1):
        message = {"jsonrpc": "2.0", "id": id_, "method": method}
        return message if params is None else {**message, "params": params}

    messages = [
        rpc("tools/call", {"name": "get_initiative", "arguments": {"id": item_id}}),
        rpc("tools/call", {"name": "get_initiative", "arguments": {"id": item_id}}, "req-é"),
        rpc("tools/call", {"name": "get_initiative", "arguments": {"id": "nope"}}),
        rpc("tools/call", {"name": "list_initiatives", "arguments": {"limit": 0}}),
        rpc("tools/call", {"name": "whoami"}),
        rpc("tools/call", {"name": "no_such_tool", "arguments": {}}),
        rpc("tools/call", {"name": 5}),
        rpc("tools/call"),
        rpc("tools/call", {"name": "whoami", "_meta": {"progressToken": 3}}),
        rpc("tools/list"),
        rpc("tools/list", {"cursor": "x"}),
        rpc("ping"),
        rpc("resources/list"),
        rpc("no/such/method", {}),
    ]
    single, managed = [], []
    for version in ("2024-11-05", "2025-06-18", "2025-11-25"):
        for message in messages:
            single.append(_post(client, key, message, {"MCP-Protocol-Version": version}))
    monkeypatch.setattr(mcp_server, "exchange", lambda body: None)
    for version in ("2024-11-05", "2025-06-18", "2025-11-25"):
        for message in messages:
            managed.append(_post(client, key, message, {"MCP-Protocol-Version": version}))
    for one, other in zip(single, managed, strict=True):
        assert one.status_code == other.status_code == 200
        assert one.headers["Content-Type"] == other.headers["Content-Type"] == "application/json"
        assert one.get_data() == other.get_data()
    bodies = [json.loads(r.get_data()) for r in single]
    assert bodies[0]["result"]["structuredContent"]["id"] == item_id
    assert {"error"} & bodies[5].keys() and bodies[5]["error"]["code"] == -32602
    assert bodies[-1]["error"]["code"] == -32601


def test_what_is_not_one_well_formed_request_goes_to_the_session_manager(app, demo, ava,
                                                                         monkeypatch):
    key = mint_key(demo.app, demo.acme, ava)
    client = app.test_client()
    served = []
    for way in ("serve", "answer"):
        real = getattr(mcp_server.Runtime, way)

        def counted(self, *args, way=way, real=real):
            served.append(way)
            return real(self, *args)

        monkeypatch.setattr(mcp_server.Runtime, way, counted)

    call_ = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
             "params": {"name": "whoami", "arguments": {}}}
    init = json.loads(INITIALIZE)
    cases = [  # (message, headers, raw body, the way, status)
        (call_, {}, None, "answer", 200),
        (call_, {"Content-Type": "application/json; charset=utf-8"}, None, "answer", 200),
        (call_, {"Accept": "*/*"}, None, "answer", 200),
        (init, {}, None, "serve", 200),
        ({"jsonrpc": "2.0", "method": "notifications/initialized"}, {}, None, "serve", 202),
        (call_, {"MCP-Protocol-Version": ""}, None, "serve", 400),
        (call_, {"MCP-Protocol-Version": "1999-01-01"}, None, "serve", 400),
        (call_, {"Accept": "text/event-stream"}, None, "serve", 406),
        (call_, {"Content-Type": "text/plain"}, None, "serve", 400),
        (None, {}, b"{not json", "serve", 400),
        (None, {}, json.dumps([call_]).encode(), "serve", 400),
        ({"jsonrpc": "2.0", "id": 1, "result": {}}, {}, None, "serve", 202),
    ]
    for message, headers, raw, way, status in cases:
        served.clear()
        answer = _post(client, key, message, headers, raw)
        assert (served, answer.status_code) == ([way], status), (message, headers, raw)
