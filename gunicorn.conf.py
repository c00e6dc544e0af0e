"""gunicorn's production settings for fvapp: `gunicorn -c gunicorn.conf.py wsgi:app`.

Each value can be changed from the environment; a command-line flag (--bind, --workers …) wins
over both. Signals (README "Running several instances"): HUP starts fresh workers on this file and
the current code, then lets the old ones finish what they are serving; TERM stops taking new
connections, lets in-flight requests finish (up to graceful_timeout), then exits.
"""

import faulthandler
import multiprocessing
import os
import sys
import time

from gunicorn.http.errors import ParseException

bind = os.environ.get("FVAPP_BIND", "127.0.0.1:8000")

# Sync workers: one request at a time each, so a slow request never delays another in the same
# process. WEB_CONCURRENCY is the usual name for the count; (2 × cores) + 1, at most 8, by default.
workers = int(os.environ.get("WEB_CONCURRENCY") or min(2 * multiprocessing.cpu_count() + 1, 8))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))  # > 1 switches to the gthread worker

# A request has at most a few seconds of database and Redis waits (DB_* timeouts, SPEC §10);
# a worker silent for `timeout` seconds is stuck, and the master replaces it (worker_abort below
# logs where it was). HUP and TERM give in-flight requests graceful_timeout seconds to finish.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Idle seconds on a keep-alive connection (gthread only; sync workers close after each answer,
# which is what nginx's default HTTP/1.0 upstream connections expect).
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))

# Recycling workers after N requests is off by default (it hides leaks instead of showing them;
# `make soak` checks the RSS stays flat); set it if a dependency ever leaks.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10

# X-Forwarded-Proto is believed only from these addresses (the reverse proxy on this host by
# default). The client's address comes from X-Forwarded-For through TRUSTED_PROXY_HOPS (the app's
# ProxyFix), which must count the same proxies.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# No preload: each worker imports the app itself, so HUP picks up new code and no database
# connection is ever shared across a fork.
preload_app = False

# The app logs one line per request itself (SPEC §10: request id, key prefix, no query strings),
# so gunicorn's access log stays off; its own log (start, signals, worker deaths) goes to stderr.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
proc_name = "fvapp"
# gunicorn ≥ 25's control socket (gunicornc) has one default path per user, which several
# instances on a host would fight over: off unless given a path of this instance's own.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket
if os.path.isdir("/dev/shm"):  # noqa: S108 (a RAM disk for the workers' heartbeat files, not temp data)
    worker_tmp_dir = "/dev/shm"  # noqa: S108


# A request the app answers from its headers alone (401, 429, 413 on Content-Length) leaves its
# body unread. A socket closed with unread bytes sends RST, and a proxy still writing the body
# sees "Broken pipe": nginx answers 502 and counts the instance failed, so anyone's large bodies
# with a bad key take every instance out of nginx for its fail_timeout (SPEC §11). The rest of the
# body is read and dropped before the connection closes, at most DRAIN_BYTES and DRAIN_SECONDS.
DRAIN_BYTES = int(os.environ.get("GUNICORN_DRAIN_BYTES", str(32 * 1024 * 1024)))
DRAIN_SECONDS = float(os.environ.get("GUNICORN_DRAIN_SECONDS", "2"))


def post_request(worker, req, environ, resp):
    body, sock = environ.get("wsgi.input"), environ.get("gunicorn.socket")
    if body is None or sock is None:
        return
    deadline, left = time.monotonic() + DRAIN_SECONDS, DRAIN_BYTES
    try:
        while left > 0 and (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            data = body.read(min(65536, left))
            if not data:
                return
            left -= len(data)
    except (OSError, ParseException):  # the client left, waited, or sent a malformed chunk
        return


def post_worker_init(worker):
    # "worker ready": the app is imported and this worker accepts connections (tests wait for it).
    worker.log.info("worker ready %s", worker.pid)


def worker_abort(worker):
    # The master is about to kill this worker for exceeding `timeout`: say where it was stuck.
    worker.log.critical("worker %s timed out after %ss; its threads' stacks follow", worker.pid, timeout)
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)


def on_starting(server):
    # Settings that cannot start the app stop the master with wsgi.py's one line, instead of
    # workers that exit at boot and are started again, one after the other.
    from fvapp.config import ConfigError, exit_for, from_environment

    try:
        from_environment()
    except ConfigError as error:
        exit_for(error)
