"""`make abuse`: the abuse run of SPEC §11. Nine clients through nginx in front of two gunicorn
instances (tests/support/cluster.py) for --duration seconds (default 30), each from its own
loopback address as the app sees it (the client's socket is bound to 127.0.0.2 … 127.0.0.9,
nginx passes X-Forwarded-For, the app trusts one hop):

- eight valid clients, each with a key of its own, each a realistic mix at a modest rate (GET
  /me, the list, one initiative, POST, PATCH, an MCP tools/call), well under the key's limit;
- one attacker on the same address as valid client 1, holding one valid key of its own and
  signing leak reports with a key the instances trust: bodies over 1 MiB sent chunked (REST, MCP,
  the sign-in page), JSON nested 50,000 deep (REST, MCP, a signed leak report), an unknown MCP
  tool; unknown, malformed and badly checksummed keys, one of them with a 1 MiB body (under
  every limit: the app refuses it unread); and a flood of distinct unknown keys on keep-alive
  connections, as fast as the instances answer.

The limits are production's: 600 requests a minute per key, 30 failed authentications a minute
per address. nginx lets bodies through to the app as the client sent them (chunked stays
chunked, up to 8 MiB): the app's own rules are what is being tried, not nginx's.

The verdict: the valid clients see only 2xx; no 5xx for anyone; the attacker gets the answers
SPEC §11 names (413 for a body over the limit however it is sent, 400 for JSON nested too deep,
JSON-RPC -32602 for an unknown tool, 401 or 429 for a key nobody has); after a graceful stop
(TERM: each worker writes its usage counts as it exits) key_usage_daily holds exactly what each
valid client counted, per key and per class (ok 2xx, denied 403, limited 429, errors other 4xx
and 5xx), of the answers the API gave (JSON; an error page nginx makes itself is no answer of
the app's and is shown apart); every instance exited with status 0; and no error line (ERROR or
CRITICAL, a traceback, nginx's error and worse) in either instance's log or nginx's.

The flood's scale: one request is one distinct key. A usage flush that looks up more than
65,535 of them in one IN (…) fails on PostgreSQL; one worker would need about 2,200 of them a
second for 30 s, far more than two instances answer on a small machine, so the run prints how
many each instance got against that figure rather than reaching it.

Standalone it makes a scratch PostgreSQL database (migrated, the demo seeded, the keys minted)
and drops it at the end; tests/ops/test_abuse_run.py runs the same run() on the suite's database.

    .venv/bin/python -m benchmarks.abuse [--duration S] [--flooders N] [--database-url URL] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import re
import select
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fvapp.services import keys
from tests.support.cluster import Cluster, cluster, cluster_env

CLIENTS = 8
ADDRESSES = [f"127.0.0.{2 + number}" for number in range(CLIENTS)]  # valid client i's address
ATTACKER = ADDRESSES[0]  # the attacker shares valid client 1's address
KEY_LIMIT = "600 per minute"  # production's API_RATE_LIMIT
FAILURE_LIMIT = "30 per minute"  # production's API_AUTH_FAILURE_LIMIT
CYCLE_SECONDS = 3.0  # a valid client's six requests take at least this: ≤ 120 a minute
MIB = 1024 * 1024
OVERSIZED = int(1.5 * MIB)
DEPTH = 50_000
IN_PARAMETERS = 65_535  # PostgreSQL's bound parameters in one statement
NGINX_DIRECTIVES = """
client_max_body_size 8m;
proxy_http_version 1.1;
proxy_request_buffering off;
"""
COLUMNS = ("ok", "denied", "limited", "errors")
# A log line at ERROR or CRITICAL level as gunicorn writes it ("[ERROR]"), as Flask's default
# handler writes the app's ("ERROR in errors: …"), or any traceback; nginx: error and worse.
APP_ERROR_LINE = re.compile(r"\[(ERROR|CRITICAL)\]|\b(ERROR|CRITICAL) in \S+:|Traceback \(most recent call last\)")
NGINX_ERROR_LINE = re.compile(r"\[(error|crit|alert|emerg)\]")
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def column(status: int) -> str:
    """The class key_usage_daily counts an answer under (SPEC §9)."""
    if status == 403:
        return "denied"
    if status == 429:
        return "limited"
    return "errors" if status >= 400 else "ok"


@dataclass
class RunKeys:
    clients: list[tuple[str, uuid.UUID]]  # each valid client's (clear key, key id)
    attacker: str  # the attacker's own valid key


def mint_keys(app, workspace_id: uuid.UUID, user_id: uuid.UUID) -> RunKeys:
    """One key per valid client and one for the attacker, by the service Settings uses."""
    with app.app_context():
        made = [keys.create_key(workspace_id, user_id, f"Abuse run {n}") for n in range(CLIENTS + 1)]
        return RunKeys([(m.clear, m.key.id) for m in made[:CLIENTS]], made[CLIENTS].clear)


class Signer:
    """A leak-report signer the instances trust (SECRET_SCANNING_KEYS_FILE), as GitHub signs."""

    def __init__(self, workdir: Path):
        self.private = ec.generate_private_key(ec.SECP256R1())
        pem = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        self.keys_file = workdir / "github-keys.json"
        self.keys_file.write_text(json.dumps({"public_keys": [
            {"key_identifier": "abuse-run", "key": pem, "is_current": True}]}))

    def headers(self, body: bytes) -> dict:
        signature = self.private.sign(body, ec.ECDSA(hashes.SHA256()))
        return {"Content-Type": "application/json", "Github-Public-Key-Identifier": "abuse-run",
                "Github-Public-Key-Signature": base64.b64encode(signature).decode()}


@dataclass
class Answer:
    status: int  # 0: no answer (an exception)
    body: bytes = b""
    upstream: str = ""
    error: str = ""
    content_type: str = ""

    @property
    def from_the_api(self) -> bool:
        """Answered by the app's API (JSON), not by nginx (its own error pages are HTML)."""
        return self.status > 0 and self.content_type.startswith("application/json")


class Http:
    """Requests to nginx from one source address. `fresh`: a new connection for each request
    (exact: nothing is ever resent); otherwise one keep-alive connection, reopened when closed."""

    def __init__(self, port: int, source: str, timeout: float = 60):
        self.port, self.source, self.timeout = port, source, timeout
        self.connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout,
                                          source_address=(self.source, 0))

    def send(self, method: str, path: str, key: str | None = None, body: bytes | None = None,
             headers: dict | None = None, keep_alive: bool = False) -> Answer:
        sent = dict(headers or {})
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        connection = (self.connection or self._connect()) if keep_alive else self._connect()
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            answer = Answer(response.status, response.read(), response.getheader("X-Upstream", ""),
                            content_type=response.getheader("Content-Type", ""))
        except (OSError, http.client.HTTPException) as err:
            connection.close()
            self.connection = None
            return Answer(0, error=repr(err))
        if keep_alive:
            self.connection = connection
        else:
            connection.close()
        return answer

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def send_chunked(self, method: str, path: str, body: bytes, headers: dict,
                     key: str | None = None, piece: int = 64 * 1024) -> Answer:
        """The body in chunks (Transfer-Encoding: chunked); stops sending as soon as an answer
        comes (a server may refuse before reading it all). The status and the answer's bytes."""
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}",
                "Transfer-Encoding: chunked", "Connection: close"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        if key is not None:
            head.append(f"Authorization: Bearer {key}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout,
                                          source_address=(self.source, 0)) as sock:
                sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
                try:
                    for start in range(0, len(body), piece):
                        if select.select([sock], [], [], 0)[0]:
                            break  # answered already
                        chunk = body[start:start + piece]
                        sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    else:
                        sock.sendall(b"0\r\n\r\n")
                except OSError:
                    pass  # the server closed its side: read what it answered
                received = bytearray()
                while data := sock.recv(65536):
                    received += data
        except OSError as err:
            return Answer(0, error=repr(err))
        found = re.match(rb"HTTP/1\.[01] (\d{3})", bytes(received))
        if not found:
            return Answer(0, error=f"no status line in {bytes(received[:80])!r}")
        head, _, rest = bytes(received).partition(b"\r\n\r\n")
        content_type = re.search(rb"(?im)^content-type:\s*(\S+)", head)
        return Answer(int(found.group(1)), rest,
                      content_type=content_type.group(1).decode() if content_type else "")


def rpc(method: str, params: dict, ident: int = 1) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": ident, "method": method, "params": params}).encode()


def tool_call(name: str, arguments: dict | None = None) -> bytes:
    return rpc("tools/call", {"name": name, "arguments": arguments or {}})


def rpc_outcome(answer: Answer) -> str:
    """What an MCP answer says: "rpc error <code>", "tool error" (isError), "tool result"."""
    try:
        message = json.loads(answer.body)
    except ValueError:
        return "not JSON-RPC"
    if "error" in message:
        return f"rpc error {message['error'].get('code')}"
    return "tool error" if message.get("result", {}).get("isError") else "tool result"


@dataclass
class Report:
    seconds: float = 0.0
    answers: Counter = field(default_factory=Counter)  # (kind, what, outcome) → count
    expected: dict = field(default_factory=dict)  # key id → Counter of classes, as the clients counted
    stored: dict = field(default_factory=dict)  # key id → Counter of classes, from key_usage_daily
    unexpected: Counter = field(default_factory=Counter)  # (kind, what, outcome, expected) → count
    samples: list[str] = field(default_factory=list)  # a few unexpected answers' bodies
    distinct_unknown: Counter = field(default_factory=Counter)  # instance → distinct unknown keys it got
    not_from_the_app: Counter = field(default_factory=Counter)  # kind → API answers nginx made itself
    exit_codes: dict = field(default_factory=dict)
    error_lines: dict = field(default_factory=dict)
    stuck_threads: int = 0

    def total(self, kind: str | None = None) -> int:
        return sum(n for (k, _, _), n in self.answers.items() if kind in (None, k))

    @property
    def valid_not_2xx(self) -> int:
        """Valid clients' answers other than 200/201 (an MCP tool error counts as one)."""
        return sum(n for (k, _, outcome), n in self.answers.items()
                   if k.startswith("client") and outcome not in ("200", "201"))

    @property
    def server_errors(self) -> int:
        return sum(n for (_, _, outcome), n in self.answers.items() if outcome.startswith("5"))

    @property
    def usage_exact(self) -> bool:
        return bool(self.expected) and all(
            +self.stored.get(key, Counter()) == +counts for key, counts in self.expected.items())

    @property
    def log_errors(self) -> int:
        return sum(len(lines) for lines in self.error_lines.values())

    def verdicts(self) -> dict[str, bool]:
        return {
            "the valid clients see only 2xx": self.total("client 1") > 0 and self.valid_not_2xx == 0,
            "no 5xx": self.server_errors == 0,
            "the attacker gets SPEC §11's answers": not self.unexpected,
            "usage counts exact after the flush": self.usage_exact,
            "no error log lines": self.log_errors == 0,
            "graceful exits (status 0)": bool(self.exit_codes) and set(self.exit_codes.values()) == {0},
            "every client finished": self.stuck_threads == 0,
        }

    @property
    def ok(self) -> bool:
        return all(self.verdicts().values())

    def lines(self) -> list[str]:
        out = [f"abuse: {self.total():,} requests in {self.seconds:.0f} s: valid clients "
               f"{sum(self.total(f'client {n}') for n in range(1, CLIENTS + 1)):,}, attacker "
               f"{self.total('attacker'):,} (flood {self.total('flood'):,})"]
        kinds = sorted({k for k, _, _ in self.answers}, key=lambda k: (k.startswith("client"), k))
        for kind in kinds:
            outcomes = Counter()
            for (k, _, outcome), n in self.answers.items():
                if k == kind:
                    outcomes[outcome] += n
            shown = ", ".join(f"{outcome}: {n:,}" for outcome, n in sorted(outcomes.items()))
            out.append(f"  {kind:<10} {sum(outcomes.values()):>7,}  {shown}")
        out.append("  attacker, by request:")
        for (kind, what, outcome), n in sorted(self.answers.items()):
            if kind in ("attacker", "flood"):
                out.append(f"    {what:<52} {outcome}: {n:,}")
        if self.distinct_unknown:
            most = max(self.distinct_unknown.values())
            out.append(f"  distinct unknown keys per instance: "
                       f"{', '.join(f'{i} {n:,}' for i, n in sorted(self.distinct_unknown.items()))} "
                       f"(one flush's IN (…) breaks past {IN_PARAMETERS:,} in one worker; the most "
                       f"an instance got is {most / IN_PARAMETERS:.0%} of that)")
        if self.not_from_the_app:
            out.append(f"  answered by nginx itself, not the app (not counted for usage): "
                       f"{', '.join(f'{k} {n:,}' for k, n in sorted(self.not_from_the_app.items()))}")
        out.append("  usage per valid key, counted by the client vs stored (ok/denied/limited/errors):")
        for number, (key, counts) in enumerate(self.expected.items(), 1):
            stored = self.stored.get(key, Counter())
            mark = "=" if +stored == +counts else "≠"
            out.append(f"    client {number}: {'/'.join(str(counts[c]) for c in COLUMNS)} {mark} "
                       f"{'/'.join(str(stored[c]) for c in COLUMNS)}")
        for (kind, what, outcome, expected), n in sorted(self.unexpected.items()):
            out.append(f"  unexpected: {kind} {what}: {outcome} × {n:,} (expected {expected})")
        out += [f"  sample: {line}" for line in self.samples[:10]]
        out.append(f"  exit statuses: {self.exit_codes}")
        for name, lines in self.error_lines.items():
            out.append(f"  {name} log: {len(lines)} error line(s)")
            out += [f"    {line[:300]}" for line in lines[:6]]
        out += [f"  {'PASS' if ok else 'FAIL'}: {what}" for what, ok in self.verdicts().items()]
        return out


class Traffic:
    """The actors share a deadline, the report and its lock."""

    def __init__(self, stack: Cluster, run_keys: RunKeys, signer: Signer, deadline: float,
                 flooders: int):
        self.port, self.keys, self.signer = stack.nginx.port, run_keys, signer
        self.deadline, self.flooders = deadline, flooders
        self.report = Report()
        self.report.expected = {key_id: Counter() for _, key_id in run_keys.clients}
        self.lock = threading.Lock()
        self.probed = threading.Event()  # the attacker's first round of probes is done
        self.seen_unknown: dict[str, set] = {}

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    def record(self, kind: str, what: str, answer: Answer, expected: set[str] | None = None,
               outcome: str | None = None, key_id: uuid.UUID | None = None) -> None:
        outcome = outcome or (str(answer.status) if answer.status else f"no answer ({answer.error[:60]})")
        with self.lock:
            self.report.answers[(kind, what, outcome)] += 1
            if key_id is not None and answer.from_the_api:
                self.report.expected[key_id][column(answer.status)] += 1
            if answer.status and not answer.from_the_api and kind != "attacker":
                self.report.not_from_the_app[kind] += 1
            if expected is not None and outcome not in expected:
                self.report.unexpected[(kind, what, outcome, "/".join(sorted(expected)))] += 1
                sample = f"{kind} {what}: {outcome} {answer.body[:160]!r}"
                if len(self.report.samples) < 20 and not any(
                        s.startswith(f"{kind} {what}: {outcome} ") for s in self.report.samples):
                    self.report.samples.append(sample)

    # -- the valid clients -----------------------------------------------------------------

    def client(self, number: int):
        key, key_id = self.keys.clients[number - 1]
        http = Http(self.port, ADDRESSES[number - 1])
        kind = f"client {number}"

        def ask(what, method, path, body=None, headers=None, check=None):
            json_headers = {"Content-Type": "application/json", **(headers or {})} if body else headers
            answer = http.send(method, path, key, body, json_headers)
            outcome = check(answer) if check and answer.status == 200 else None
            self.record(kind, what, answer, outcome=outcome, key_id=key_id)
            return answer

        def run():
            while self.running():
                began = time.monotonic()
                ask("GET /api/v1/me", "GET", "/api/v1/me")
                ask("GET /api/v1/initiatives", "GET", "/api/v1/initiatives?limit=5")
                made = ask("POST /api/v1/initiatives", "POST", "/api/v1/initiatives",
                           json.dumps({"title": f"Client {number} {uuid.uuid4().hex[:6]}",
                                       "description": "From the abuse run."}).encode())
                if made.status == 201:
                    ident = json.loads(made.body)["data"]["id"]
                    ask("GET /api/v1/initiatives/<id>", "GET", f"/api/v1/initiatives/{ident}")
                    ask("PATCH /api/v1/initiatives/<id>", "PATCH", f"/api/v1/initiatives/{ident}",
                        json.dumps({"title": f"Client {number} patched"}).encode())
                ask("MCP tools/call list_initiatives", "POST", "/api/mcp",
                    tool_call("list_initiatives", {"limit": 5}), MCP_HEADERS,
                    check=lambda a: "200" if rpc_outcome(a) == "tool result" else f"200 {rpc_outcome(a)}")
                time.sleep(max(0.0, min(began + CYCLE_SECONDS, self.deadline) - time.monotonic()))
        return run

    # -- the attacker ----------------------------------------------------------------------

    def prober(self):
        """Its own valid key and the trusted signer: what SPEC §11 says must be refused cleanly."""
        http, key = Http(self.port, ATTACKER), self.keys.attacker
        padded_create = json.dumps({"title": "Cut short", "description": "x"}).encode() + b" " * OVERSIZED
        padded_call = tool_call("whoami") + b" " * OVERSIZED
        nested = b"[" * DEPTH + b"]" * DEPTH
        login = b"email=attacker%40example.test&password=" + b"x" * OVERSIZED
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        json_type = {"Content-Type": "application/json"}

        def probes():
            yield ("chunked body over 1 MiB: POST /api/v1/initiatives", {"413"},
                   http.send_chunked("POST", "/api/v1/initiatives", padded_create, json_type, key), None)
            yield ("chunked body over 1 MiB: MCP tools/call", {"413"},
                   http.send_chunked("POST", "/api/mcp", padded_call, MCP_HEADERS, key), None)
            yield ("chunked body over 1 MiB: POST /login", {"413"},
                   http.send_chunked("POST", "/login", login, form), None)
            yield ("JSON nested 50,000 deep: POST /api/v1/initiatives", {"400"},
                   http.send("POST", "/api/v1/initiatives", key, nested, json_type), None)
            yield ("JSON nested 50,000 deep: MCP", {"400"},
                   http.send("POST", "/api/mcp", key, nested, MCP_HEADERS), None)
            yield ("JSON nested 50,000 deep: signed leak report", {"400"},
                   http.send("POST", "/api/secret-scanning", None, nested, self.signer.headers(nested)), None)
            answer = http.send("POST", "/api/mcp", key, tool_call("drop_all_tables"), MCP_HEADERS)
            yield ("MCP tools/call of an unknown tool", {"200 rpc error -32602"}, answer,
                   f"{answer.status} {rpc_outcome(answer)}" if answer.status == 200 else None)

        def run():
            while self.running():
                began = time.monotonic()
                for what, expected, answer, outcome in probes():
                    self.record("attacker", what, answer, expected, outcome)
                self.probed.set()
                time.sleep(max(0.0, min(began + 2.0, self.deadline) - time.monotonic()))
        return run

    def guesser(self):
        """Keys nobody has, in every shape, at a few requests a second."""
        http = Http(self.port, ATTACKER)
        refused = {"401", "429"}
        nested = b"[" * DEPTH + b"]" * DEPTH
        full = json.dumps({"title": "Full"}).encode() + b" " * (MIB - 100)  # under every limit

        def run():
            self.probed.wait(timeout=max(0.0, self.deadline - time.monotonic()))
            while self.running():
                unknown = keys.generate_key()
                for what, answer, expected in (
                    ("unknown key: GET /api/v1/me", http.send("GET", "/api/v1/me", unknown), refused),
                    ("badly checksummed key", http.send("GET", "/api/v1/me", unknown[:-1] + (
                        "A" if unknown[-1] != "A" else "B")), refused),
                    ("malformed key", http.send("GET", "/api/v1/me", "not-a-key"), refused),
                    ("no key", http.send("GET", "/api/v1/initiatives"), refused),
                    ("unknown key: MCP tools/call", http.send(
                        "POST", "/api/mcp", keys.generate_key(), tool_call("whoami"), MCP_HEADERS), refused),
                    ("unknown key: a body of 1 MiB (Content-Length)", http.send(
                        "POST", "/api/v1/initiatives", keys.generate_key(), full,
                        {"Content-Type": "application/json"}), refused),
                    ("unknown key: JSON nested 50,000 deep", http.send(
                        "POST", "/api/v1/initiatives", keys.generate_key(), nested,
                        {"Content-Type": "application/json"}), refused | {"400"}),
                ):
                    self.record("attacker", what, answer, expected)
                time.sleep(0.2)
        return run

    def flooder(self):
        """Distinct unknown keys, one after the other on a keep-alive connection."""
        http = Http(self.port, ATTACKER)
        refused = {"401", "429"}

        def run():
            self.probed.wait(timeout=max(0.0, self.deadline - time.monotonic()))
            seen: Counter = Counter()
            try:
                while self.running():
                    answer = http.send("GET", "/api/v1/me", keys.generate_key(), keep_alive=True)
                    self.record("flood", "distinct unknown key: GET /api/v1/me", answer, refused)
                    if answer.from_the_api:  # the app counted it (nginx answers some itself)
                        seen[answer.upstream] += 1
            finally:
                http.close()
            with self.lock:
                self.report.distinct_unknown.update(seen)
        return run

    def actors(self):
        return ([(f"client-{n}", self.client(n)) for n in range(1, CLIENTS + 1)]
                + [("prober", self.prober()), ("guesser", self.guesser())]
                + [(f"flooder-{n}", self.flooder()) for n in range(self.flooders)])


def stored_usage(database_url: str, key_ids) -> dict:
    """key_usage_daily summed over the days, per key id."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text(
                "SELECT key_id, SUM(ok), SUM(denied), SUM(limited), SUM(errors) FROM key_usage_daily "
                "GROUP BY key_id")).all()
    finally:
        engine.dispose()
    wanted = {str(k): k for k in key_ids}
    return {wanted[str(row[0])]: Counter(dict(zip(COLUMNS, map(int, row[1:]), strict=True)))
            for row in rows if str(row[0]) in wanted}


def error_entries(lines: list[str], pattern: re.Pattern) -> list[str]:
    """The lines `pattern` finds; a traceback is shown as the line before it (the message), its
    start and its last line (the exception)."""
    found = []
    for at, line in enumerate(lines):
        if not pattern.search(line):
            continue
        if line.startswith("Traceback"):
            last = next((later for later in lines[at + 1:] if later and not later[0].isspace()), "")
            line = f"{lines[at - 1] if at else ''} | {line} … {last}"
        found.append(line)
    return found


def log_errors(stack: Cluster) -> dict[str, list[str]]:
    """Error lines in each instance's log (gunicorn's and the app's) and in nginx's."""
    found = {instance.name: error_entries(instance.log.read_text(errors="replace").splitlines(),
                                          APP_ERROR_LINE)
             for instance in stack.instances}
    text = stack.nginx.error_log.read_text(errors="replace") if stack.nginx.error_log.exists() else ""
    found["nginx"] = error_entries(text.splitlines(), NGINX_ERROR_LINE)
    return found


def run(database_url: str, redis_url: str, workdir: Path, run_keys: RunKeys, duration: float = 30,
        flooders: int = 2, out=print) -> Report:
    """Start the cluster (production's limits, usage flushed by each worker in the background
    and at exit), drive the traffic for `duration` seconds, stop the instances with TERM, then
    read key_usage_daily and the logs. report.ok is the verdict."""
    signer = Signer(workdir)
    env = cluster_env(database_url, redis_url, "fvapp-abuse", API_RATE_LIMIT=KEY_LIMIT,
                      API_AUTH_FAILURE_LIMIT=FAILURE_LIMIT, USAGE_FLUSH_IN_BACKGROUND="1",
                      USAGE_FLUSH_INTERVAL="60", SECRET_SCANNING_KEYS_FILE=str(signer.keys_file))
    with cluster(workdir, env, nginx_directives=NGINX_DIRECTIVES) as stack:
        out(f"abuse: nginx {stack.url} → {', '.join(i.url for i in stack.instances)}; "
            f"{CLIENTS} valid clients from {ADDRESSES[0]}–{ADDRESSES[-1]}, the attacker from "
            f"{ATTACKER} with {flooders} flooder(s); {duration:.0f} s")
        start = time.monotonic()
        traffic = Traffic(stack, run_keys, signer, start + duration, flooders)
        threads = [threading.Thread(target=actor, name=name, daemon=True) for name, actor in traffic.actors()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=max(0.0, start + duration - time.monotonic()) + 90)
        report = traffic.report
        report.seconds = time.monotonic() - start
        report.stuck_threads = sum(thread.is_alive() for thread in threads)
        names = {instance.address: instance.name for instance in stack.instances}
        report.distinct_unknown = Counter({names.get(a, a): n for a, n in report.distinct_unknown.items()})
        for instance in stack.instances:  # TERM: graceful; each worker flushes its counts
            report.exit_codes[instance.name] = instance.stop()
        report.stored = stored_usage(database_url, report.expected)
        report.error_lines = log_errors(stack)
    return report


def prepare(database_url: str) -> RunKeys:
    """Migrate the scratch database, seed the demo, mint the run's keys (Ava's, in Acme)."""
    from flask_migrate import upgrade

    from benchmarks.common import bench_app
    from fvapp.cli import seed_demo
    from fvapp.services.accounts import find_user

    app = bench_app(database_url)
    with app.app_context():
        upgrade()
        seed_demo()
        ava = find_user("ava@acme.test")
        workspace_id = next(m.workspace_id for m in ava.memberships if m.role == "owner")
        user_id = ava.id
    return mint_keys(app, workspace_id, user_id)


def main() -> int:
    from benchmarks.common import scratch_database

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30, help="seconds of traffic (default 30)")
    parser.add_argument("--flooders", type=int, default=2, help="the attacker's flood connections (default 2)")
    parser.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server; the run makes and drops a database of its own there")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()

    url, drop = scratch_database(args.database_url)
    try:
        run_keys = prepare(url)
        with tempfile.TemporaryDirectory(prefix="fvapp-abuse-") as work:
            report = run(url, args.redis_url, Path(work), run_keys, args.duration, args.flooders,
                         out=lambda line: print(line, flush=True))
    finally:
        drop()
    print("\n".join(report.lines()))
    print("abuse: " + ("PASS" if report.ok else "FAIL"))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
