"""The production shape on loopback: Debian's nginx in front of several gunicorn instances (each
from the repository's gunicorn.conf.py, with workers and a database pool of its own), for
tests/test_multi_instance.py and benchmarks/soak.py.

Everything listens on 127.0.0.1, lives in one work directory (configs, pid files, logs, nginx's
temp paths) and is stopped by cluster()'s exit, also on failure. Every wait is bounded.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONF = ROOT / "gunicorn.conf.py"
READY = "worker ready"  # what gunicorn.conf.py's post_worker_init logs
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
ERROR_LINE = re.compile(r"\[(ERROR|CRITICAL)\]|Traceback \(most recent call last\)")
NGINX_ERROR_LINE = re.compile(r"\[(error|crit|alert|emerg)\]")

# nginx as README "Running several instances" shows it, plus what only a test wants: its own
# prefix, logs and temp paths, and the upstream that answered (X-Upstream, $upstream_addr: two
# addresses when the first failed and nginx retried on the next).
NGINX_CONF = """\
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log notice;
{user}
events {{ worker_connections 1024; }}

http {{
    log_format upstreams '$status $request_method $uri $upstream_addr $upstream_status $request_time';
    access_log {work}/nginx-access.log upstreams;
    client_body_temp_path {work}/nginx-tmp/body;
    proxy_temp_path {work}/nginx-tmp/proxy;
    fastcgi_temp_path {work}/nginx-tmp/fastcgi;
    uwsgi_temp_path {work}/nginx-tmp/uwsgi;
    scgi_temp_path {work}/nginx-tmp/scgi;

    upstream fvapp {{
{servers}
    }}

    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 1m;                    # the app's MAX_CONTENT_LENGTH (1 MiB)

        location / {{
            proxy_pass http://fvapp;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            # An instance that refuses, resets or times out (restarting, stopping) or answers
            # 502/503: the request goes to the next one. nginx never resends a non-idempotent
            # request (POST, PATCH) that reached an instance.
            proxy_next_upstream error timeout http_502 http_503;
            proxy_next_upstream_tries 3;
            proxy_next_upstream_timeout 15s;
            proxy_connect_timeout 2s;
            proxy_read_timeout 60s;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"""


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(condition, seconds: float, what: str, log: Path | None = None, process=None):
    """Poll `condition` until it returns something true; at most `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {process.returncode}:\n"
                               + (log.read_text()[-4000:] if log else ""))
        time.sleep(0.1)
    raise RuntimeError(f"{what}: not within {seconds:g} s" + (f":\n{log.read_text()[-4000:]}" if log else ""))


def _answers(url: str) -> bool:
    try:
        return requests.get(url + "/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


class Instance:
    """One gunicorn master and its workers, as `gunicorn -c gunicorn.conf.py wsgi:app` runs them."""

    def __init__(self, name: str, workdir: Path, env: dict, workers: int = 2):
        self.name, self.workers = name, workers
        self.log = workdir / f"{name}.log"
        self.log.touch()
        self.env = {**os.environ, **env, "WEB_CONCURRENCY": str(workers)}
        self.process: subprocess.Popen | None = None
        self.port = 0
        self._since = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _text(self, since: int = 0) -> str:
        """The log from byte offset `since` on."""
        with self.log.open("rb") as log:
            log.seek(since)
            return log.read().decode(errors="replace")

    def _end(self) -> int:
        return self.log.stat().st_size

    def start(self, port: int = 0, seconds: float = 180) -> Instance:
        """Start it (again) on `port` (0: any free one) and wait until every worker serves."""
        return self.launch(port).wait_serving(seconds)

    def launch(self, port: int = 0) -> Instance:
        """Start the master; wait_serving() waits for it (so several can boot side by side)."""
        self._since = self._end()
        with self.log.open("a") as stderr:
            self.process = subprocess.Popen(  # noqa: S603 (our own command line)
                [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF),
                 "--bind", f"127.0.0.1:{port}", "wsgi:app"],
                cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=stderr,
            )
        return self

    def wait_serving(self, seconds: float = 180) -> Instance:
        def serving():
            text = self._text(self._since)
            found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", text)
            if found and text.count(READY) >= self.workers:
                self.port = int(found.group(1))
                return _answers(self.url)
            return False

        _wait(serving, seconds, f"gunicorn {self.name} start", self.log, self.process)
        return self

    def worker_pids(self) -> set[int]:
        """The master's children (its workers), from /proc."""
        master, found = self.process.pid, set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with suppress(OSError):
                    # /proc/<pid>/stat: "pid (comm) state ppid …"; comm may hold spaces.
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    if int(fields[1]) == master:
                        found.add(int(entry.name))
        return found

    def reload(self, seconds: float = 180) -> tuple[set[int], set[int]]:
        """HUP: gunicorn starts new workers and retires the old ones gracefully. Waits until the
        new ones serve and the old ones are gone; returns (old pids, new pids)."""
        old, since = self.worker_pids(), self._end()
        self.process.send_signal(signal.SIGHUP)

        def replaced():
            current = self.worker_pids()
            return (self._text(since).count(READY) >= self.workers
                    and len(current) == self.workers and not current & old and current)

        new = _wait(replaced, seconds, f"gunicorn {self.name} reload", self.log, self.process)
        return old, new

    def stop(self, seconds: float = 45) -> int:
        """TERM: graceful shutdown (gunicorn's graceful_timeout); KILL only past `seconds`."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.terminate()
        try:
            return self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise RuntimeError(f"gunicorn {self.name} ignored TERM for {seconds:g} s") from None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log_end(self) -> int:
        return self._end()

    def error_lines(self, since: int = 0) -> list[str]:
        return [line for line in self._text(since).splitlines() if ERROR_LINE.search(line)]


class Nginx:
    """nginx in the foreground (daemon off), its own prefix, config, pid file and logs."""

    def __init__(self, workdir: Path, upstreams: list[str]):
        if NGINX is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx)")
        self.workdir, self.upstreams = workdir, upstreams
        self.conf = workdir / "nginx.conf"
        self.error_log = workdir / "nginx-error.log"
        self.access_log = workdir / "nginx-access.log"
        self.process: subprocess.Popen | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, seconds: float = 30) -> Nginx:
        (self.workdir / "nginx-tmp").mkdir(exist_ok=True)
        for attempt in range(3):  # the free port may be taken before nginx binds it: try another
            self.port = free_port()
            self.conf.write_text(NGINX_CONF.format(
                work=self.workdir, port=self.port,
                # As root, nginx's workers would become "nobody", who cannot enter the work dir.
                user="user root;" if os.geteuid() == 0 else "",
                servers="\n".join(f"        server {address};" for address in self.upstreams),
            ))
            self.process = subprocess.Popen(  # noqa: S603 (our own command line)
                [NGINX, "-p", str(self.workdir), "-c", str(self.conf), "-e", str(self.error_log),
                 "-g", "daemon off;"],
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            )
            try:
                _wait(lambda: _answers(self.url), seconds, "nginx start", self.error_log, self.process)
                return self
            except RuntimeError:
                self.stop()
                if attempt == 2:
                    raise
        return self

    def stop(self, seconds: float = 15) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
            try:
                self.process.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_end(self) -> int:
        return self.error_log.stat().st_size if self.error_log.exists() else 0

    def error_lines(self, since: int = 0) -> list[str]:
        with self.error_log.open("rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
        return [line for line in text.splitlines() if NGINX_ERROR_LINE.search(line)]


class Cluster:
    def __init__(self, nginx: Nginx, instances: list[Instance]):
        self.nginx, self.instances = nginx, instances

    @property
    def url(self) -> str:
        return self.nginx.url

    def worker_pids(self) -> dict[int, str]:
        """Every worker's pid → its instance's name."""
        return {pid: i.name for i in self.instances for pid in i.worker_pids()}

    def log_ends(self) -> dict[str, int]:
        """Where each log ends now: error_lines(since=…) reads only what comes after."""
        return {**{i.name: i.log_end() for i in self.instances}, "nginx": self.nginx.log_end()}

    def error_lines(self, since: dict[str, int] | None = None) -> dict[str, list[str]]:
        """Error lines in each log (gunicorn's and the app's, nginx's), by log name."""
        since = since or {}
        lines = {i.name: i.error_lines(since.get(i.name, 0)) for i in self.instances}
        lines["nginx"] = self.nginx.error_lines(since.get("nginx", 0))
        return lines


def require_nginx() -> None:
    """For tests: skip without nginx on a developer's machine, fail in CI (FVAPP_REQUIRE_BROWSER
    is set there: the real parts must run)."""
    import pytest

    if NGINX is None:
        message = "nginx is not installed (apt-get install nginx)"
        if os.environ.get("FVAPP_REQUIRE_BROWSER"):
            pytest.fail(message + "; CI must run these (FVAPP_REQUIRE_BROWSER is set)")
        pytest.skip(message)


def cluster_env(database_url: str, redis_url: str, prefix: str, **extra) -> dict:
    """The instances' environment: one database, one Redis (keys under a prefix of this run's
    own), one SECRET_KEY, one trusted proxy (nginx); limits raised unless `extra` says otherwise."""
    return {
        "FVAPP_ENV": "testing",  # plain http on loopback: cookies without Secure
        "SECRET_KEY": "cluster-" + uuid.uuid4().hex,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "RATELIMIT_KEY_PREFIX": f"{prefix}-{uuid.uuid4().hex}",
        "TRUSTED_PROXY_HOPS": "1",
        "API_RATE_LIMIT": "1000000 per minute",
        # Every client is 127.0.0.1 here, and a revoked key's 401s count against the address:
        # the per-address failure budget would end up refusing everyone.
        "API_AUTH_FAILURE_LIMIT": "1000000 per minute",
        **extra,
    }


@contextmanager
def cluster(workdir: Path, env: dict, instances: int = 2, workers: int = 2):
    """nginx on a free port in front of `instances` gunicorn instances with `workers` workers
    each, os.environ plus `env`; all stopped on the way out."""
    with ExitStack() as stack:
        started = []
        for number in range(instances):
            instance = Instance(f"app{'ABCDEFGH'[number]}", workdir, env, workers)
            stack.callback(instance.kill)  # after stop(), a no-op
            stack.callback(instance.stop)
            started.append(instance.launch())
        for instance in started:
            instance.wait_serving()
        nginx = Nginx(workdir, [instance.address for instance in started])
        stack.callback(nginx.stop)
        nginx.start()
        yield Cluster(nginx, started)


CSRF_INPUT = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
CSRF_HEADER = re.compile(r'"X-CSRFToken": "([^"]+)"')
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
