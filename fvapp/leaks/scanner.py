"""Secret scanner (SPEC §9): finds API keys with a valid checksum in files, before they are
committed. No app, no database, no configuration: the format rule is the one of services.keys.
Prints ``file:line: <display prefix>`` per find, never the full key; exit status 1 if any."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import click

from ..services.keys import BODY_LENGTH, CHECKSUM_LENGTH, KEY_PREFIX, display_prefix, is_well_formed

# A candidate: the prefix and exactly body + checksum base62 characters, not part of a longer
# token. Only candidates whose checksum holds (is_well_formed) are reported.
_CANDIDATE = re.compile(
    rb"(?<![0-9A-Za-z_])" + re.escape(KEY_PREFIX.encode()) + rb"[0-9A-Za-z]{%d}(?![0-9A-Za-z])"
    % (BODY_LENGTH + CHECKSUM_LENGTH)
)
_PREFIX = KEY_PREFIX.encode()
_SKIP_DIRS = {".git", ".hg", ".svn"}
_BINARY_SNIFF = 8192


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    prefix: str  # display prefix only, never the key

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.prefix}"


def scan_bytes(data: bytes) -> Iterator[tuple[int, str]]:
    """(line number, display prefix) of each valid key in data."""
    if _PREFIX not in data:
        return
    for match in _CANDIDATE.finditer(data):
        candidate = match.group().decode("ascii")
        if is_well_formed(candidate):
            yield data.count(b"\n", 0, match.start()) + 1, display_prefix(candidate)


def _is_binary(data: bytes) -> bool:
    return b"\0" in data[:_BINARY_SNIFF]


def scan_file(path: str) -> list[Finding]:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return []
    if _is_binary(data):
        return []
    return [Finding(path, line, prefix) for line, prefix in scan_bytes(data)]


def iter_files(paths: Iterable[str]) -> Iterator[str]:
    """Files under paths, recursively, skipping VCS directories; symlinked dirs not followed."""
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
                for name in sorted(files):
                    yield os.path.join(root, name)
        elif os.path.isfile(path):
            yield path


def scan_paths(paths: Iterable[str]) -> tuple[list[Finding], int]:
    """All findings and the number of files read."""
    findings: list[Finding] = []
    count = 0
    for path in iter_files(paths):
        count += 1
        findings.extend(scan_file(path))
    return findings, count


def run(paths: Iterable[str], echo=click.echo) -> int:
    findings, _ = scan_paths(paths)
    for finding in findings:
        echo(str(finding))
    if findings:
        echo(
            f"{len(findings)} API key(s) found. Remove them and revoke each on Settings → API Keys.",
            err=True,
        )
        return 1
    return 0


@click.command("scan")
@click.argument("paths", nargs=-1, type=click.Path(), required=True)
def scan_command(paths):
    """Find ForceVue API keys (checksum-valid) in PATHS; exit 1 if any. Prints file:line and
    the key's display prefix only."""
    click.get_current_context().exit(run(paths))


def main() -> None:  # console script fvapp-scan
    scan_command()


if __name__ == "__main__":
    main()
