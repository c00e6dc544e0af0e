"""The production shape on loopback: Debian's nginx in front of several gunicorn instances (each
a tests.support.processes.Gunicorn: the repository's gunicorn.conf.py, workers and a database
pool of its own), for tests/ops/test_several_instances*.py and benchmarks/soak.py.

Everything listens on 127.0.0.1, lives in one work directory (configs, pid files, logs, nginx's
temp paths) and is stopped by cluster()'s exit, also on failure. Every wait is bounded.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path

import requests

from tests.support.net import free_port
from tests.support.processes import Gunicorn, wait_until

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
NGINX_ERROR_LINE = re.compile(r"\[(error|crit|alert|emerg)\]")

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
{directives}
        }}
    }}
}}
"""


def _answers(url: str) -> bool:
    try:
        return requests.get(url + "/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


class Nginx:
    """nginx in the foreground (daemon off), its own prefix, config, pid file and logs."""

    def __init__(self, workdir: Path, upstreams: list[str], directives: str = ""):
        """`directives`: more nginx directives for the location (they win over the server's)."""
        if NGINX is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx)")
        self.workdir, self.upstreams, self.directives = workdir, upstreams, directives
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
                directives="\n".join(f"            {line.strip()}" for line in self.directives.splitlines()),
            ))
            self.process = subprocess.Popen(  # noqa: S603 (our own command line)
                [NGINX, "-p", str(self.workdir), "-c", str(self.conf), "-e", str(self.error_log),
                 "-g", "daemon off;"],
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            )
            try:
                wait_until(lambda: _answers(self.url), seconds, "nginx start", self.error_log, self.process)
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
    def __init__(self, nginx: Nginx, instances: list[Gunicorn]):
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
def cluster(workdir: Path, env: dict, instances: int = 2, workers: int = 2, nginx_directives: str = ""):
    """nginx on a free port in front of `instances` gunicorn instances with `workers` workers
    each, os.environ plus `env` (and `nginx_directives` added to its location); all stopped on
    the way out."""
    with ExitStack() as stack:
        started = []
        for number in range(instances):
            instance = Gunicorn(workdir, env, workers=workers, name=f"app{'ABCDEFGH'[number]}")
            stack.callback(instance.stop)
            started.append(instance.launch())
        for instance in started:
            instance.wait_serving()
        nginx = Nginx(workdir, [instance.address for instance in started], nginx_directives)
        stack.callback(nginx.stop)
        nginx.start()
        yield Cluster(nginx, started)

