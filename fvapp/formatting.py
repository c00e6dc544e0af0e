"""Formats the browser pages and the API share (both import it; it imports neither)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(dt: datetime | None) -> str | None:
    """ISO-8601 UTC with milliseconds and Z: the one timestamp format of the API. (isoformat
    ends in "+00:00" in UTC; cheaper than strftime, three times per API request.)"""
    if dt is None:
        return None
    if dt.tzinfo is not UTC:  # what the database gives is UTC already (models.UTCDateTime)
        dt = dt.astimezone(UTC)
    return dt.isoformat(timespec="milliseconds")[:-6] + "Z"


def utc(dt: datetime | None) -> str:
    """A timestamp for people: `2026-06-12 16:00:00 UTC`."""
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if dt else ""


def duration(seconds: float) -> str:
    """A configured interval for people: `1 minute`, `30 seconds`, `5 minutes`, `1.5 minutes`."""
    seconds = float(seconds)
    if seconds < 60:
        value, unit = seconds, "second"
    elif seconds < 3600:
        value, unit = seconds / 60, "minute"
    else:
        value, unit = seconds / 3600, "hour"
    number = f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{number} {unit}{'' if number == '1' else 's'}"


def interval(seconds: float) -> str:
    """How often, for "every …" and "the last …": `minute`, `30 seconds`, `5 minutes`."""
    words = duration(seconds)
    return words[2:] if words.startswith("1 ") else words
