"""When a contact may happen: quiet hours across every candidate zone, and calendar-day frequency windows.

Two kinds of time rule, both pure and DST-correct because they look at real instants through `zoneinfo`:

* quiet hours: the instant must lie in ``[start, end)`` local time in *every* candidate zone
  (the intersection of the windows, F-02);
* frequency: counts per window of N **calendar days** in the patient's reference zone (Reg F counts
  days, not 168-hour spans), and a pause of N days after a conversation whose day is day 1.

`plan_send` combines them into the earliest allowed instant at or after the decision time.

>>> from datetime import datetime, time
>>> from zoneinfo import ZoneInfo
>>> at = datetime(2026, 3, 16, 12, 30, tzinfo=ZoneInfo("UTC"))          # 08:30 in New York, 05:30 in LA
>>> next_quiet_ok(at, ("America/New_York", "America/Los_Angeles"), time(8), time(21)).isoformat()
'2026-03-16T15:00:00+00:00'
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

MAX_STEPS = 64
"""Quiet-hours and window searches settle in a few steps; the bound only guards against a bug."""


def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)  # ZoneInfo caches instances by name


def in_quiet_window(at: datetime, zones: Iterable[str], start: time, end: time) -> bool:
    """Whether ``at`` lies in ``[start, end)`` local time in every zone."""
    return all(start <= at.astimezone(_zone(z)).time() < end for z in zones)


def _next_start(at: datetime, zone: ZoneInfo, start: time, end: time) -> datetime:
    """The earliest instant at or after ``at`` that is inside the window in ``zone`` alone."""
    local = at.astimezone(zone)
    if start <= local.time() < end:
        return at
    day = local.date() if local.time() < start else local.date() + timedelta(days=1)
    # A start inside a spring-forward gap maps (fold=0) to the first instant after the gap.
    candidate = datetime.combine(day, start, tzinfo=zone).astimezone(UTC)
    return candidate if candidate > at else candidate + timedelta(days=1)


def next_quiet_ok(
    at: datetime, zones: Sequence[str], start: time, end: time, horizon: timedelta = timedelta(days=3)
) -> datetime | None:
    """The earliest instant at or after ``at`` inside the window in every zone; ``None`` when the windows
    never overlap (zones too far apart) within ``horizon``."""
    limit = at + horizon
    current = at
    for _ in range(MAX_STEPS):
        if current > limit:
            return None
        moved = current
        for name in zones:
            moved = max(moved, _next_start(moved, _zone(name), start, end))
        if moved == current:
            return current
        current = moved
    return None


# Both are asked about the same few instants and days over and over (every account's scan of a day
# starts at the same instant): remembered, a call costs a hash instead of a time-zone conversion.
@lru_cache(maxsize=4096)
def local_day(at: datetime, zone: str) -> date:
    return at.astimezone(_zone(zone)).date()


@lru_cache(maxsize=4096)
def start_of_day(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=_zone(zone)).astimezone(UTC)


def window_peak(days: Counter[date], day: date, window_days: int) -> int:
    """The most contacts in any window of ``window_days`` calendar days that contains ``day``.

    One more contact on ``day`` keeps every window within a cap of N only if this peak is below N.

    >>> window_peak(Counter({date(2026, 3, 10): 3, date(2026, 3, 18): 2}), date(2026, 3, 16), 7)
    3
    """
    if not days:
        return 0
    first = day - timedelta(days=window_days - 1)
    counts = [days.get(first + timedelta(days=i), 0) for i in range(2 * window_days - 1)]
    total = peak = sum(counts[:window_days])
    for i in range(window_days, len(counts)):  # slide the window one day later at a time
        total += counts[i] - counts[i - window_days]
        peak = max(peak, total)
    return peak


@dataclass(frozen=True)
class DayCap:
    """At most ``cap`` contacts in any ``window_days`` calendar days (``days`` holds the existing ones)."""

    name: str
    days: Counter[date]
    cap: int
    window_days: int

    def peak(self, day: date) -> int:
        return window_peak(self.days, day, self.window_days)

    def allows(self, day: date) -> bool:
        return self.peak(day) < self.cap


@dataclass(frozen=True)
class DayPause:
    """No contact on the ``length`` days starting at each of ``starts`` (a conversation's day is day 1)."""

    name: str
    starts: tuple[date, ...]
    length: int

    def days_since(self, day: date) -> int | None:
        """Days from the latest start on or before ``day`` (0 on the start itself), or None."""
        past = [start for start in self.starts if start <= day]
        return (day - max(past)).days if past else None

    def allows(self, day: date) -> bool:
        since = self.days_since(day)
        return since is None or since >= self.length


DayRule = DayCap | DayPause


@dataclass(frozen=True)
class Schedule:
    """The earliest allowed instant, or why there is none before the action expires."""

    not_before: datetime | None
    reason: Literal["now", "delayed", "past_expiry", "no_window"]


def plan_send(
    now: datetime,
    expires_at: datetime,
    rules: Sequence[DayRule],
    zones: Sequence[str] | None,
    reference: str,
    start: time,
    end: time,
) -> Schedule:
    """The earliest instant at or after ``now`` that every day rule allows and that lies inside quiet
    hours in every zone (``zones`` None: exempt, e.g. letters); past ``expires_at`` is no instant."""
    current = now
    for _ in range(MAX_STEPS):
        day = local_day(current, reference)
        allowed = day
        while not all(rule.allows(allowed) for rule in rules):
            allowed += timedelta(days=1)
            if start_of_day(allowed, reference) > expires_at:
                return Schedule(None, "past_expiry")
        if allowed > day:
            current = start_of_day(allowed, reference)
        if zones is not None:
            moved = next_quiet_ok(current, zones, start, end)
            if moved is None:
                return Schedule(None, "no_window")
            if moved != current:
                current = moved
                continue  # a later instant may fall on a day a window forbids: check again
        if current > expires_at:
            return Schedule(None, "past_expiry")
        return Schedule(current, "now" if current == now else "delayed")
    raise RuntimeError("plan_send did not settle")  # pragma: no cover - guarded by MAX_STEPS
