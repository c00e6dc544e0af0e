"""The MCP server at /api/mcp (SPEC §8), on the official `mcp` SDK, served by Flask.

Mounting: the blueprint below runs the very same before_request hook as /api/v1
(fvapp.api.auth.authenticate), and the API app's after_request (rate-limit headers, usage
count) covers both, so the key check, the plan gate and the per-key rate-limit budget are one.
Only when the hook has passed does the view hand the request to the SDK, on an event loop made
once per process that each request runs on its own thread (Runtime). The tool handlers run
inside Flask's request context (same thread, same contextvars) and call the very functions the
REST operations call (fvapp/api/views.py): the same statements, the same data.

Two ways into the SDK, one answer. A stateless JSON POST is a single exchange: one JSON-RPC
request in, its response out. The SDK's single-exchange driver (mcp.server.runner.serve_one,
the one its 2026 HTTP entry uses) serves that directly, and fvapp hands it every well-formed
request at a handshake-era protocol version (`exchange`). Everything else — `initialize`,
notifications, a missing or unknown MCP-Protocol-Version, wrong headers, bodies the SDK refuses
— goes to the SDK's StreamableHTTPSessionManager (stateless, JSON responses, one per process),
whose answers (202, 400, 406, the parse errors, …) stay the SDK's own. The manager's stateless
path would build a whole session per POST (a transport, five memory streams, four tasks, a
dispatcher) to carry that one exchange; the two answers are the same bytes
(tests/api/test_mcp.py checks them side by side).

Errors: a name that is no tool is a JSON-RPC error, -32602 (MCP, Tools › Error handling); bad
arguments, an unknown or foreign id and the services' refusals are tool results with isError.

The tools are described once (TOOLS): their argument models give the input schemas the server
lists and the public manifest (GET /api/mcp) shows.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import json
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp.types as types
import pydantic_core
from flask import Blueprint, Response, g, request
from mcp.server.connection import Connection
from mcp.server.lowlevel import Server
from mcp.server.runner import serve_one
from mcp.server.streamable_http_manager import (
    DEFAULT_MAX_REQUEST_BODY_SIZE,
    StreamableHTTPSessionManager,
)
from mcp.shared.exceptions import MCPError, NoBackChannelError
from mcp.shared.jsonrpc_dispatcher import handler_exception_to_error_data
from mcp.shared.transport_context import TransportContext
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from werkzeug.exceptions import MethodNotAllowed

from .. import bodies
from ..paths import API_ROOT
from ..services import initiatives
from ..services.errors import DomainError
from . import auth, views
from .schemas import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_OFFSET,
    Description,
    InitiativeOut,
    Title,
)

PATH = API_ROOT + "/mcp"
SERVER_NAME = "fvapp"

bp = Blueprint("mcp", __name__, url_prefix=PATH)
PUBLIC_ENDPOINTS = {"mcp.manifest"}


@bp.before_request
def authenticate():
    """The REST hook itself: one key check, one rate-limit budget for both surfaces."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    return auth.authenticate()


# -- tool arguments ------------------------------------------------------------------------


class Args(BaseModel):
    """Exact JSON types, no unknown fields; `org_id` is accepted and ignored (a key never
    reaches another workspace)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    org_id: str | None = Field(default=None, description="Ignored: a key acts in its workspace.")


class NoArgs(Args):
    pass


class ListArgs(Args):
    archived: bool = Field(default=False, description="false: active only; true: archived only.")
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


class IdArgs(Args):
    id: str = Field(description="The initiative's id (a UUID).")


class CreateArgs(Args):
    title: Title
    description: Description | None = None


class UpdateArgs(Args):
    """Any of title, description, archived; those left out are not changed."""

    id: str = Field(description="The initiative's id (a UUID).")
    title: Title = None
    description: Description | None = Field(default=None, description="null clears it.")
    archived: bool = Field(default=None, description="true archives, false restores.")


class SearchArgs(Args):
    query: str = Field(min_length=1, max_length=200,
                       description="Case-insensitive substring of the title or description.")
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=initiatives.SEARCH_MAX)


class SearchResult(BaseModel):
    items: list[InitiativeOut]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args: type[Args]
    run: Callable[[Any], tuple[BaseModel, str]]

    def definition(self) -> types.Tool:
        schema = self.args.model_json_schema()
        schema.pop("title", None)
        return types.Tool(name=self.name, description=self.description, input_schema=schema)


def _whoami(_: NoArgs):
    me = views.me()
    return me, f"Key {me.api_key.prefix} acts as {me.user.email} ({me.role}) in {me.workspace.name}."


def _list(args: ListArgs):
    data = views.initiative_page(archived=args.archived, limit=args.limit, offset=args.offset)
    kind = "archived" if args.archived else "active"
    more = ", more follow." if data.pagination.has_more else "."
    return data, f"{len(data.items)} {kind} initiative(s){more}"


def _get(args: IdArgs):
    item = views.get_initiative(args.id)
    return item, f"Initiative {item.title!r}."


def _create(args: CreateArgs):
    item = views.new_initiative(args.title, args.description)
    return item, f"Created initiative {item.title!r} ({item.id})."


def _update(args: UpdateArgs):
    item = views.change_initiative(args.id, args, args.model_fields_set)
    return item, f"Updated initiative {item.title!r}."


def _search(args: SearchArgs):
    rows = initiatives.search_initiatives(auth.current_principal().workspace_id, args.query,
                                          limit=args.limit)
    return SearchResult.model_validate({"items": rows}), f"{len(rows)} initiative(s) match."


TOOLS: dict[str, Tool] = {t.name: t for t in [
    Tool("whoami", "The key, the user it acts as, that user's role and the workspace.",
         NoArgs, _whoami),
    Tool("list_initiatives", "Initiatives, newest first: active ones, or archived ones.",
         ListArgs, _list),
    Tool("get_initiative", "One initiative by id.", IdArgs, _get),
    Tool("create_initiative", "Create an initiative.", CreateArgs, _create),
    Tool("update_initiative",
         "Change the title or description, archive or restore an initiative.",
         UpdateArgs, _update),
    Tool("search_initiatives",
         "Initiatives whose title or description contains the query (case-insensitive), "
         "newest first.", SearchArgs, _search),
]}
DEFINITIONS = [t.definition() for t in TOOLS.values()]


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)],
                                is_error=True)


def call(name: str, arguments: dict | None) -> types.CallToolResult:
    """Run one tool: its result, or an isError result for bad arguments and refusals. A name
    that is no tool is the protocol's error, not a result (MCP, Tools › Error handling):
    MCPError INVALID_PARAMS (-32602), which the SDK answers as the JSON-RPC error."""
    tool = TOOLS.get(name)
    if tool is None:
        raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {name}")
    try:
        args = tool.args.model_validate(arguments or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors()
        )
        return _error(f"Invalid arguments: {problems}")
    try:
        data, text = tool.run(args)
    except DomainError as exc:
        return _error(exc.message)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structured_content=data.model_dump(mode="json"),
    )


async def _on_list_tools(ctx, params) -> types.ListToolsResult:
    return types.ListToolsResult(tools=DEFINITIONS)


FAILURE = "mcp_failure"  # on flask.g: what a tool raised that is neither a result nor a refusal


async def _on_call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
    # Synchronous on purpose: the loop serves one request at a time, on the request's thread.
    try:
        return call(params.name, params.arguments)
    except MCPError:
        raise
    except Exception as failure:
        # Answered by the app's handlers once the SDK is done (serve): a database that is
        # unavailable is the REST API's 503 envelope with Retry-After, anything else its 500
        # (logged); the exception's text never reaches the client.
        g.setdefault(FAILURE, failure)
        raise MCPError(code=types.INTERNAL_ERROR, message="Internal error") from None


@asynccontextmanager
async def _no_state(_: Server) -> AsyncIterator[None]:
    # The tools keep no state of the server's: they use Flask's app context.
    yield None


server = Server(SERVER_NAME, version="1", lifespan=_no_state, on_list_tools=_on_list_tools,
                on_call_tool=_on_call_tool)
# The SDK wraps each message in an OpenTelemetry span by default, a no-op without an exporter:
# fvapp installs none (its request log line is the record), so it opts out as the SDK documents
# (an empty Server.middleware).
server.middleware.clear()


# -- HTTP ----------------------------------------------------------------------------------


class Runtime:
    """The SDK's session manager (stateless, JSON responses), running for the life of the
    process on an event loop of its own: made on the first MCP request, and again in a forked
    child (the parent's loop and its selector are not the child's to use). Each request runs
    the loop on its own thread (Flask's request context and the database session go with it,
    as context variables), one request at a time per process: `lock`."""

    def __init__(self):
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.manager = StreamableHTTPSessionManager(server, stateless=True, json_response=True)
        self._stop = asyncio.Event()
        started = self.loop.create_future()
        # A context of its own: not the first request's, which made it.
        self._running = self.loop.create_task(self._run(started), context=contextvars.Context())
        self.loop.run_until_complete(started)

    async def _run(self, started: asyncio.Future) -> None:
        async with self.manager.run():
            started.set_result(None)
            await self._stop.wait()

    def serve(self, scope: dict, body: bytes) -> tuple[int, list, bytes]:
        """The session manager's answer to an ASGI request."""
        with self.lock:
            return self.loop.run_until_complete(self._serve(scope, body))

    def answer(self, version: str, message: types.JSONRPCRequest) -> bytes:
        """The single-exchange answer to one JSON-RPC request (see `exchange`)."""
        with self.lock:
            return self.loop.run_until_complete(_answer(version, message))

    async def _serve(self, scope: dict, body: bytes) -> tuple[int, list, bytes]:
        received = False
        status, headers, chunks = 500, [], []

        async def receive():
            nonlocal received
            if not received:
                received = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        async def send(message):
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status, headers = message["status"], message.get("headers", [])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.manager.handle_request(scope, receive, send)
        return status, headers, b"".join(chunks)

    def close(self) -> None:
        """Stop the session manager and close the loop (at exit, in the process that made it)."""
        if os.getpid() != self.pid or self.loop.is_closed():
            return
        with self.lock:
            self._stop.set()
            self.loop.run_until_complete(self._running)
            self.loop.close()


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


# -- the single exchange -------------------------------------------------------------------

JSON = "application/json"
# What the manager's stateless transport gives the server for each request: no back channel
# (no session for a reply to reach; in JSON mode a response carries nothing but the answer).
_TRANSPORT = TransportContext(kind="streamable-http", can_send_request=False)
logger = logging.getLogger(__name__)


@dataclass
class _Exchange:
    """The SDK's DispatchContext (mcp.shared.dispatcher) for one stateless JSON POST: like the
    manager's stateless transport in JSON mode, it sends no request to the client (no back
    channel) and drops notifications and progress (a JSON response holds only the answer)."""

    request_id: types.RequestId
    transport: TransportContext = _TRANSPORT
    message_metadata: None = None
    cancel_requested: anyio.Event = field(default_factory=anyio.Event)
    can_send_request: bool = False

    async def send_raw_request(self, method: str, params: Mapping[str, Any] | None,
                               opts: Any = None) -> dict[str, Any]:
        raise NoBackChannelError(method)

    async def notify(self, method: str, params: Mapping[str, Any] | None,
                     opts: Any = None) -> None:
        return None

    async def progress(self, progress: float, total: float | None = None,
                       message: str | None = None) -> None:
        return None


def _accepts_json(accept: str) -> bool:
    """The transport's own reading of Accept (check_accept_headers), for JSON responses."""
    types_ = {part.strip().split(";")[0].strip().lower() for part in accept.split(",")}
    return bool(types_ & {JSON, "application/*", "*/*"})


def exchange(body: bytes) -> tuple[str, types.JSONRPCRequest] | None:
    """(protocol version, request) when the manager's stateless transport would take this POST
    and give the server one JSON-RPC request on a born-ready connection at that version: one
    MCP-Protocol-Version header naming a handshake-era version, Content-Type application/json,
    an Accept that takes JSON, a body within the SDK's limit that is one JSON-RPC request and
    not `initialize`. None for anything else, which the manager answers itself. Where it is
    simpler to be stricter than the SDK, it is (Content-Type spelt exactly `application/json`,
    parameters allowed): what it leaves out still gets the SDK's answer, from the manager."""
    environ = request.environ  # a header sent twice is one value, joined by ", " (PEP 3333)
    version = environ.get("HTTP_MCP_PROTOCOL_VERSION")
    if version not in HANDSHAKE_PROTOCOL_VERSIONS:
        return None
    if environ.get("CONTENT_TYPE", "").split(";")[0] != JSON:
        return None
    if not _accepts_json(environ.get("HTTP_ACCEPT", "")) or len(body) > DEFAULT_MAX_REQUEST_BODY_SIZE:
        return None
    try:
        message = types.jsonrpc_message_adapter.validate_python(pydantic_core.from_json(body),
                                                                by_name=False)
    except ValueError:  # not JSON, or no JSON-RPC message (ValidationError is a ValueError)
        return None
    if not isinstance(message, types.JSONRPCRequest) or message.method == "initialize":
        return None
    return version, message


async def _answer(version: str, message: types.JSONRPCRequest) -> bytes:
    """The JSON-RPC response, as the manager's JSON-RPC dispatcher words it: the result, or the
    handler's error (MCPError's own, INVALID_PARAMS for a ValidationError, else code 0)."""
    reply: types.JSONRPCResponse | types.JSONRPCError
    try:
        result = await serve_one(server, _Exchange(message.id), message.method, message.params,
                                 connection=Connection.from_envelope(version, None, None),
                                 lifespan_state=None)
        reply = types.JSONRPCResponse(jsonrpc="2.0", id=message.id, result=result)
    except Exception as exc:
        error = handler_exception_to_error_data(exc)
        if error is None:
            logger.exception("handler for %r raised", message.method)
            error = types.ErrorData(code=0, message=str(exc))
        reply = types.JSONRPCError(jsonrpc="2.0", id=message.id, error=error)
    return reply.model_dump_json(by_alias=True, exclude_unset=True).encode()


def runtime() -> Runtime:
    """This process's Runtime, made on first use."""
    global _runtime
    found = _runtime
    if found is None or found.pid != os.getpid():
        with _runtime_lock:
            found = _runtime
            if found is None or found.pid != os.getpid():
                found = _runtime = Runtime()
                atexit.register(found.close)
    return found


def _forget_after_fork() -> None:
    # The child makes its own on first use; the parent's is left as it is (not closed: its
    # loop's selector is shared with the parent) and kept referenced, never collected here.
    global _runtime, _runtime_lock
    if _runtime is not None:
        _inherited.append(_runtime)
    _runtime, _runtime_lock = None, threading.Lock()


_inherited: list[Runtime] = []
os.register_at_fork(after_in_child=_forget_after_fork)


@bp.post("", provide_automatic_options=False)
def serve():
    body = bodies.read()  # over MAX_CONTENT_LENGTH, however sent: 413 in the envelope
    single = exchange(body)
    if single is not None:
        content = runtime().answer(*single)
        status, headers = 200, [("Content-Type", JSON)]
    else:
        status, headers, content = runtime().serve(_scope(), body)
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]
    failure = g.pop(FAILURE, None)
    if failure is not None:
        raise failure
    return Response(content, status=status, headers=headers)


def _scope() -> dict:
    """The ASGI scope of this request, for the session manager."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": request.scheme,
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "query_string": request.query_string,
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                    for k, v in request.headers.items()],
        "client": (request.remote_addr or "", 0),
        "server": (request.host, 0),
    }


def manifest_document() -> dict:
    return {
        "name": SERVER_NAME,
        "transport": "streamable-http",
        "endpoint": PATH,
        "authentication": "Authorization: Bearer <workspace API key>",
        "tools": [d.model_dump(mode="json", by_alias=True, exclude_none=True)
                  for d in DEFINITIONS],
    }


@bp.get("", provide_automatic_options=False)
def manifest():
    """Public: the tools and their input schemas. An event stream is not offered (405)."""
    if "text/event-stream" in request.headers.get("Accept", ""):
        raise MethodNotAllowed(valid_methods=["POST"])
    return Response(json.dumps(manifest_document()), mimetype="application/json")


__all__ = ["TOOLS", "bp", "call", "manifest_document"]
