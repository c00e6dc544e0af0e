"""Reading requests per key per day (SPEC §9) for the API Keys page: the rows' 30-day sparklines
(one query for every key on the page) and the detail view's 90-day chart. The counts are
written by fvapp/usage/counting.py, so the last flush interval of each process is not in them yet."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import select

from ..extensions import db
from ..models import KeyUsageDaily
from .counting import COLUMNS, KEPT_DAYS, today

ROW_DAYS = 30


@dataclass(frozen=True)
class Day:
    day: date
    ok: int = 0
    denied: int = 0
    limited: int = 0
    errors: int = 0

    @property
    def total(self) -> int:
        return self.ok + self.denied + self.limited + self.errors

    @property
    def refused(self) -> int:
        return self.total - self.ok


@dataclass
class Usage:
    """One key's days, oldest first, every day of the period (days without requests are 0)."""

    days: list[Day] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(d.total for d in self.days)

    @property
    def today(self) -> Day:
        return self.days[-1]

    @property
    def peak(self) -> int:
        return max((d.total for d in self.days), default=0)

    def sums(self) -> Day:
        return Day(self.days[-1].day, *(sum(getattr(d, c) for d in self.days) for c in COLUMNS))

    def last(self, count: int) -> Usage:
        return Usage(self.days[-count:])

    def used_days(self) -> list[Day]:
        return [d for d in self.days if d.total]


def _period(days: int) -> list[date]:
    end = today()
    return [end - timedelta(days=n) for n in range(days - 1, -1, -1)]


def for_keys(key_ids: Iterable[uuid.UUID], days: int = ROW_DAYS) -> dict[uuid.UUID, Usage]:
    """Each key's last `days` days, in ONE query for all of them."""
    ids = list(key_ids)
    period = _period(days)
    found: dict[uuid.UUID, dict[date, Day]] = {key_id: {} for key_id in ids}
    if ids:
        rows = db.session.execute(
            select(KeyUsageDaily).where(
                KeyUsageDaily.key_id.in_(ids), KeyUsageDaily.day >= period[0]
            )
        ).scalars()
        for row in rows:
            found[row.key_id][row.day] = Day(row.day, *(getattr(row, c) for c in COLUMNS))
    return {
        key_id: Usage([by_day.get(day) or Day(day) for day in period])
        for key_id, by_day in found.items()
    }


def for_key(key_id: uuid.UUID, days: int = KEPT_DAYS) -> Usage:
    return for_keys([key_id], days)[key_id]


@dataclass(frozen=True)
class Segment:
    kind: str  # "ok", "denied", "limited", "errors" or "refused" (the three together)
    y: int
    height: int


@dataclass(frozen=True)
class Bar:
    day: Day
    x: int
    segments: list[Segment]


def axis(peak: int) -> list[int]:
    """The chart's labelled gridlines, bottom to top: 0, the middle and a round top at or above
    the busiest day (1, 2, 2.5, 4, 5, 6 or 8 times a power of ten, with a whole middle)."""
    top, magnitude = 2, 1
    while top < peak:
        for factor in (1, 2, 2.5, 4, 5, 6, 8, 10):
            if magnitude * factor >= peak and (magnitude * factor) % 2 == 0:
                top = int(magnitude * factor)
                break
        else:
            magnitude *= 10
            continue
        break
    return [0, top // 2, top]


def bars(usage: Usage, height: int, step: int, kinds: tuple[str, ...] = COLUMNS,
         top: int | None = None) -> list[Bar]:
    """SVG geometry for a stacked bar per day, scaled to `top` (default: the busiest day), `height`
    user units tall, one bar every `step`. Stacked by cumulative rounding, so segments never gap or
    overlap; a day with any request is at least one unit tall. Kinds: COLUMNS, or
    ("ok", "refused") for the sparkline."""
    peak = max(top or 0, usage.peak) or 1
    drawn = []
    for index, day in enumerate(usage.days):
        values = [day.refused if kind == "refused" else getattr(day, kind) for kind in kinds]
        segments, below, running = [], 0, 0
        for kind, value in zip(kinds, values, strict=True):
            if not value:
                continue
            running += value
            top = max(round(running * height / peak), below + 1)
            segments.append(Segment(kind, height - top, top - below))
            below = top
        drawn.append(Bar(day, index * step, segments))
    return drawn
