"""gunicorn as production runs it (the repository's gunicorn.conf.py), for tests
(tests/ops/, tests/support/cluster.py) and benchmarks (compare.py, soak.py).

Gunicorn is one master and its workers: start (again, on the same port), HUP, TERM, the workers'
pids, the error lines of its log. gunicorn() is the short form: a server on a free port for the
length of a `with`. Every wait is bounded.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

import requests

from tests.support.marks import REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "gunicorn.conf.py"
READY = "worker ready"  # what gunicorn.conf.py's post_worker_init logs, once per worker
ERROR_LINE = re.compile(r"\[(ERROR|CRITICAL)\]|Traceback \(most recent call last\)")


def wait_until(condition, seconds: float, what: str, log: Path | None = None, process=None):
    """Poll `condition` until it returns something true (returned); at most `seconds`. A
    process that exits meanwhile, or the time running out, raises with the log's tail."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {process.returncode}:\n"
                               + (log.read_text(errors="replace")[-4000:] if log else ""))
        time.sleep(0.1)
    tail = f":\n{log.read_text(errors='replace')[-4000:]}" if log else ""
    raise RuntimeError(f"{what}: not within {seconds:g} s{tail}")


class Gunicorn:
    """`gunicorn -c gunicorn.conf.py [args] target` on 127.0.0.1, from the repository root, with
    os.environ plus `env`; its log (stderr) is workdir/<name>.log, appended to across starts."""

    def __init__(self, workdir: Path, env: dict, *args: str, target: str = "wsgi:app",
                 workers: int = 2, name: str = "gunicorn", ready_path: str = "/healthz"):
        self.name, self.target, self.args, self.workers = name, target, args, workers
        self.ready_path = ready_path
        self.env = {**os.environ, **env}
        self.log = workdir / f"{name}.log"
        self.log.touch()
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

    def log_end(self) -> int:
        return self.log.stat().st_size

    def start(self, port: int = 0, seconds: float = 180) -> Gunicorn:
        """Start it (again) on `port` (0: a free one) and wait until every worker serves."""
        return self.launch(port).wait_serving(seconds)

    def launch(self, port: int = 0) -> Gunicorn:
        """Start the master only; wait_serving() then waits (so several can boot side by side)."""
        self._since = self.log_end()
        with self.log.open("a") as stderr:
            self.process = subprocess.Popen(  # noqa: S603 (our own command line)
                [sys.executable, "-m", "gunicorn", "--config", str(CONF), "--workers", str(self.workers),
                 "--bind", f"127.0.0.1:{port}", *self.args, self.target],
                cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=stderr,
            )
        return self

    def wait_serving(self, seconds: float = 180) -> Gunicorn:
        """Until every worker has loaded the app and `ready_path` answers (any status)."""
        def serving():
            text = self._text(self._since)
            found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", text)
            if found and text.count(READY) >= self.workers:
                self.port = int(found.group(1))
                try:
                    return requests.get(self.url + self.ready_path, timeout=2).status_code > 0
                except requests.RequestException:
                    return False
            return False

        wait_until(serving, seconds, f"gunicorn {self.name} start", self.log, self.process)
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
        old, since = self.worker_pids(), self.log_end()
        self.process.send_signal(signal.SIGHUP)

        def replaced():
            current = self.worker_pids()
            return (self._text(since).count(READY) >= self.workers
                    and len(current) == self.workers and not current & old and current)

        new = wait_until(replaced, seconds, f"gunicorn {self.name} reload", self.log, self.process)
        return old, new

    def stop(self, seconds: float = 45) -> int | None:
        """TERM: graceful shutdown (gunicorn.conf.py's graceful_timeout); KILL past `seconds`.
        The exit status: 0 for a graceful one (-9 if it had to be killed)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def error_lines(self, since: int = 0) -> list[str]:
        return [line for line in self._text(since).splitlines() if ERROR_LINE.search(line)]


@contextmanager
def gunicorn(target: str, env: dict, workdir: Path, *args: str, workers: int = 2, ready_path: str = "/"):
    """Serve `target` ("module:app", from the repository root) with gunicorn on a free port of
    127.0.0.1, os.environ plus `env`; yields the base URL once every worker has loaded the app
    and `ready_path` answers (any status). Extra gunicorn arguments go in `args`. Its log is
    workdir/gunicorn.log, quoted if it fails to start; it is stopped on the way out."""
    server = Gunicorn(workdir, env, *args, target=target, workers=workers, ready_path=ready_path)
    try:
        yield server.start(seconds=60).url
    finally:
        server.stop(seconds=15)


class Server:
    def __init__(self, url: str, access_log: Path):
        self.url, self.access_log = url, access_log

    def get(self, path: str, **kw) -> requests.Response:
        # A fresh connection every time (no Session), so any worker may take it.
        return requests.get(self.url + path, timeout=10, **kw)

    def burst(self, path: str, count: int, headers: dict) -> list[requests.Response]:
        with ThreadPoolExecutor(max_workers=6) as pool:
            return list(pool.map(lambda _: self.get(path, headers=headers), range(count)))

    def pids(self) -> list[str]:
        """The worker pid of every request served so far, in order."""
        return [line.split()[0] for line in self.access_log.read_text().splitlines() if line]


@contextmanager
def fvapp_server(database_url: str, tmp_path: Path, redis_url: str | None = None, **env):
    access_log = tmp_path / "access.log"
    access_log.touch()
    environment = {
        "FVAPP_ENV": "testing",
        "SECRET_KEY": "gunicorn-test-" + uuid.uuid4().hex,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url or REDIS_URL,
        "RATELIMIT_KEY_PREFIX": f"fvapp-test-{uuid.uuid4().hex}",  # parallel runs never mix
        "API_AUTH_FAILURE_LIMIT": "1000 per minute",
        **env,
    }
    with gunicorn("wsgi:app", environment, tmp_path, "--access-logfile", str(access_log),
                  "--access-logformat", "%(p)s %(s)s %(r)s", ready_path="/api/v1/openapi.json") as url:
        yield Server(url, access_log)
