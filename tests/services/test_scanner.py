"""The pre-commit scanner of SPEC §9: checksum-valid keys only, never the full key, exit 1/0."""

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from fvapp.leaks.scanner import scan_command
from fvapp.services.keys import KEY_PREFIX, display_prefix, generate_key, is_well_formed

ROOT = Path(__file__).resolve().parents[2]


def _wrong_checksum(key: str) -> str:
    last = key[-1]
    bad = key[:-1] + ("A" if last != "A" else "B")
    assert not is_well_formed(bad)
    return bad


def test_valid_key_is_reported_with_line_and_prefix_only(tmp_path):
    key = generate_key()
    (tmp_path / "config.py").write_text(f"x = 1\n\nTOKEN = '{key}'\n")
    result = CliRunner().invoke(scan_command, [str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path / 'config.py'}:3: {display_prefix(key)}" in result.output
    assert key not in result.output
    assert key[len(KEY_PREFIX) + 4:] not in result.output  # not even the secret part


def test_wrong_checksum_and_lookalikes_are_not_reported(tmp_path):
    key = generate_key()
    (tmp_path / "a.txt").write_text(
        f"{_wrong_checksum(key)}\n"
        f"{KEY_PREFIX}short\n"
        f"x{key}\n"          # glued to a longer word
        f"{key}Z\n"          # one character too many
    )
    result = CliRunner().invoke(scan_command, [str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output == ""


def test_recursive_skips_git_and_binary_files(tmp_path):
    key = generate_key()
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "packed").write_text(key)
    (tmp_path / "blob.bin").write_bytes(b"\0\1\2" + key.encode())
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "env").write_text(f"A={generate_key()}\nB={key}\n")
    result = CliRunner().invoke(scan_command, [str(tmp_path)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if ":" in line and KEY_PREFIX in line]
    assert [line.split(": ")[0] for line in lines] == [
        f"{tmp_path / 'deep' / 'er' / 'env'}:1", f"{tmp_path / 'deep' / 'er' / 'env'}:2"]
    assert key not in result.output


def test_clean_files_exit_zero(tmp_path):
    (tmp_path / "ok.py").write_text("print('no secrets here')\n")
    result = CliRunner().invoke(scan_command, [str(tmp_path / "ok.py"), str(tmp_path / "missing")])
    assert result.exit_code == 0
    assert result.output == ""


def test_flask_scan_command(runner, tmp_path):
    key = generate_key()
    (tmp_path / "k").write_text(key)
    result = runner.invoke(args=["scan", str(tmp_path)])
    assert result.exit_code == 1
    assert display_prefix(key) in result.output and key not in result.output


def test_console_entry_needs_no_configuration(tmp_path):
    """fvapp-scan runs without SECRET_KEY, DATABASE_URL or any app: a plain pre-commit hook."""
    key = generate_key()
    (tmp_path / "leak.txt").write_text(f"\n{key}\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FVAPP", "SECRET", "DATABASE", "REDIS", "FLASK"))}
    env["PYTHONPATH"] = str(ROOT)
    found = subprocess.run([sys.executable, "-m", "fvapp.leaks.scanner", str(tmp_path)],
                           env=env, capture_output=True, text=True, timeout=60)
    assert found.returncode == 1, found.stderr
    assert found.stdout == f"{tmp_path / 'leak.txt'}:2: {display_prefix(key)}\n"
    assert key not in found.stdout + found.stderr
    clean = subprocess.run([sys.executable, "-m", "fvapp.leaks.scanner", str(ROOT / "fvapp")],
                           env=env, capture_output=True, text=True, timeout=60)
    assert clean.returncode == 0, clean.stdout + clean.stderr


def test_pre_commit_hook_and_console_script_are_declared():
    hooks = (ROOT / ".pre-commit-hooks.yaml").read_text()
    assert "entry: fvapp-scan" in hooks
    assert 'fvapp-scan = "fvapp.leaks.scanner:main"' in (ROOT / "pyproject.toml").read_text()
