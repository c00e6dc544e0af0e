"""Operator commands started without settings: one line naming what to set, exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _bare_environment() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if name not in {"FVAPP_ENV", "SECRET_KEY", "DATABASE_URL", "REDIS_URL"}}
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.mark.parametrize("command", [
    [str(BIN / "flask"), "--app", "wsgi", "routes"],
    [str(BIN / "flask"), "--app", "wsgi", "set-plan", "Acme", "pro"],
    [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", "127.0.0.1:0", "wsgi:app"],
])
def test_a_command_without_settings_names_the_variable_and_exits_2(command):
    result = subprocess.run(command, cwd=ROOT, env=_bare_environment(), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("fvapp:")]
    assert lines == ["fvapp: SECRET_KEY must be set in production: set SECRET_KEY, or "
                     "FVAPP_ENV=development for a local run."]


def test_a_malformed_setting_is_named_too():
    env = _bare_environment() | {"FVAPP_ENV": "development", "BCRYPT_ROUNDS": "many"}
    result = subprocess.run([str(BIN / "flask"), "--app", "wsgi", "routes"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "BCRYPT_ROUNDS must be a whole number" in result.stderr
