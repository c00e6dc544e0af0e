"""Template filters: timestamps (iso, utc, ago, day, days_left) and audit events in words."""

from __future__ import annotations

from datetime import UTC, datetime

from ..formatting import duration, interval, iso, utc
from ..services import keys

EVENT_TEXT = {
    "api_key.created": "created API key {label}",
    "api_key.revoked": "revoked API key {label}",
    "api_key.leak_revoked": "revoked API key {label}, reported public",
    "leak_alert.dismissed": "dismissed the leak alert about API key {label}",
    "member.added": "added {label}",
    "member.role_changed": "changed the role of {label}",
    "member.removed": "removed {label}",
    "plan.changed": "changed the plan",
    "workspace.renamed": "renamed the workspace to {label}",
}


def describe_event(event) -> str:
    text = EVENT_TEXT.get(event.action, event.action).format(label=event.target_label)
    return f"{text[0].upper()}{text[1:]}" + (f" ({event.detail})" if event.detail else "")


def revoked_by(key) -> str:
    """Who revoked a key, in the words its row, its detail and Activity all use."""
    return keys.revoked_by_label(key.revoked_by.name if key.revoked_by else None, key.revoked_reason)


def event_actor(event) -> str:
    """Activity's Who: a key's revoker in the same words as its row; else the person."""
    if event.action in ("api_key.revoked", "api_key.leak_revoked"):
        return keys.revoked_by_label(event.actor.name if event.actor else None, event.detail)
    return event.actor.name if event.actor else keys.REVOKED_BY_OPERATOR


def ago(dt: datetime | None, now: datetime | None = None) -> str:
    if dt is None:
        return "Never"
    seconds = int(((now or datetime.now(UTC)) - dt).total_seconds())
    if seconds < 45:
        return "just now"
    for unit, size in (("year", 31_536_000), ("month", 2_592_000), ("day", 86_400),
                       ("hour", 3_600), ("minute", 60)):
        if seconds >= size:
            n = round(seconds / size) if unit == "minute" else seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def days_left(dt: datetime, now: datetime | None = None) -> int:
    """Whole UTC days from today to dt's day: 0 today, 1 tomorrow, negative once past."""
    return (dt.astimezone(UTC).date() - (now or datetime.now(UTC)).date()).days


def day(dt: datetime | None) -> str:
    """A date for people, in UTC: `2026-06-12`."""
    return f"{dt.astimezone(UTC):%Y-%m-%d}" if dt else ""


def register(app) -> None:
    app.add_template_filter(iso, "iso")
    app.add_template_filter(utc, "utc")
    app.add_template_filter(ago, "ago")
    app.add_template_filter(days_left, "days_left")
    app.add_template_filter(day, "day")
    app.add_template_filter(describe_event, "describe_event")
    app.add_template_filter(revoked_by, "revoked_by")
    app.add_template_filter(event_actor, "event_actor")
    app.add_template_filter(duration, "duration")
    app.add_template_filter(interval, "interval")
