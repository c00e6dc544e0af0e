"""Formats the browser pages and the API share (both import it; it imports neither)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(dt: datetime | None) -> str | None:
    """ISO-8601 UTC with milliseconds and Z: the one timestamp format of the API. (isoformat
    ends in "+00:00" in UTC; cheaper than strftime, three times per API request.)"""
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def utc(dt: datetime | None) -> str:
    """A timestamp for people: `2026-06-12 16:00:00 UTC`."""
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if dt else ""
