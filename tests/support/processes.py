"""gunicorn as production runs it, for tests (tests/test_api_processes.py) and benchmarks/compare.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
READY = "worker ready"


@contextmanager
def gunicorn(target: str, env: dict, workdir: Path, *args: str, workers: int = 2, ready_path: str = "/"):
    """Serve `target` ("module:app", from the repository root) with gunicorn on a free port of
    127.0.0.1, os.environ plus `env`; yields the base URL once every worker has loaded the app
    and `ready_path` answers (any status). Extra gunicorn arguments go in `args`. Its log is
    workdir/gunicorn.log, quoted if it fails to start; it is stopped on the way out."""
    log, hooks = workdir / "gunicorn.log", workdir / "gunicorn_hooks.py"
    hooks.write_text(f"def post_worker_init(worker):\n    worker.log.info('%s %s', {READY!r}, worker.pid)\n")
    with log.open("w") as stderr:
        process = subprocess.Popen(  # noqa: S603 (our own command line)
            [sys.executable, "-m", "gunicorn", "--config", str(hooks), "--workers", str(workers),
             "--bind", "127.0.0.1:0", *args, target],
            cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=stderr,
        )
    try:
        yield _wait_until_serving(process, log, workers, ready_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_serving(process, log: Path, workers: int, ready_path: str, seconds: float = 60) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = log.read_text()
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{text}")
        found = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", text)
        if found and text.count(READY) >= workers:  # every worker has loaded the app
            try:
                requests.get(found.group(1) + ready_path, timeout=2)
                return found.group(1)
            except requests.ConnectionError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not start serving within {seconds:g} s:\n{log.read_text()}")
