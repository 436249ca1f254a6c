"""Business hours and capacity of one agent group (queue), as designers write them in routing.yml.

Pure and clock-injected (`now` is a parameter) so tests and audits can replay a decision
at any time; the wait estimate lives here too because it is the same group's staffing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Mapping, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kefu.errors import ConfigError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAYS_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


def _clock(value: Any, where: str) -> time:
    """"HH:MM" → time; "24:00" means end of day (time.max)."""
    text = str(value).strip()
    try:
        hours, minutes = (int(part) for part in text.split(":"))
    except ValueError as exc:
        raise ConfigError(f"{where}: expected HH:MM, got {text!r}") from exc
    if (hours, minutes) == (24, 0):
        return time.max
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise ConfigError(f"{where}: {text!r} is not a time of day")
    return time(hours, minutes)


def _days(value: Any, where: str) -> frozenset[int]:
    """"mon-fri", "mon,wed,sat", or a list of day names → weekday numbers (0 = Monday)."""
    parts = value if isinstance(value, list) else str(value).replace(" ", "").split(",")
    found: set[int] = set()
    for part in parts:
        part = str(part).lower()
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ConfigError(f"{where}: unknown day {part!r} (use {', '.join(DAYS)})")
        start, end = DAYS.index(first), DAYS.index(last or first)
        found.update(range(start, end + 1) if start <= end else [*range(start, 7), *range(0, end + 1)])
    return frozenset(found)


@dataclass(frozen=True)
class Hours:
    """Opening hours in one time zone; `close` before `open` means the shift runs past midnight."""

    timezone: str = "Asia/Shanghai"
    days: frozenset[int] = frozenset(range(7))
    open: time = time(0, 0)
    close: time = time.max
    closed_dates: frozenset[date] = frozenset()

    @classmethod
    def parse(cls, raw: Optional[Mapping[str, Any]], timezone: str, where: str) -> Hours:
        raw = dict(raw or {})
        unknown = set(raw) - {"days", "open", "close", "closed_dates", "always"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"{where}: unknown time zone {timezone!r}") from exc
        if raw.get("always"):
            return cls(timezone=timezone)
        try:
            dates = raw.get("closed_dates") or []
            closed = frozenset(d if isinstance(d, date) else date.fromisoformat(str(d)) for d in dates)
        except ValueError as exc:
            raise ConfigError(f"{where}: closed_dates must be YYYY-MM-DD") from exc
        return cls(
            timezone=timezone,
            days=_days(raw.get("days", "mon-sun"), where),
            open=_clock(raw.get("open", "00:00"), where + ".open"),
            close=_clock(raw.get("close", "24:00"), where + ".close"),
            closed_dates=closed,
        )

    def is_open(self, now: datetime) -> bool:
        """Whether agents of this group work at `now` (an aware datetime; naive means UTC)."""
        if now.tzinfo is None:
            now = now.replace(tzinfo=ZoneInfo("UTC"))
        local = now.astimezone(ZoneInfo(self.timezone))
        moment = local.time().replace(tzinfo=None)
        if self.open <= self.close:
            day = local.date()
            inside = self.open <= moment < self.close or (self.close == time.max and moment >= self.open)
        else:  # overnight shift: the part after midnight belongs to the previous day's shift
            inside = moment >= self.open or moment < self.close
            day = local.date() if moment >= self.open else date.fromordinal(local.date().toordinal() - 1)
        return inside and day.weekday() in self.days and day not in self.closed_dates

    def describe(self, language: str = "en") -> str:
        """Short human-readable form for the customer message, e.g. "mon-fri 09:00-18:00"."""
        if self.days == frozenset(range(7)) and self.open == time(0, 0) and self.close == time.max:
            return "全天24小时" if language == "zh" else "24/7"
        names = DAYS_ZH if language == "zh" else DAYS
        days = sorted(self.days)
        if not days:
            span = ""
        elif days == list(range(days[0], days[-1] + 1)):
            span = names[days[0]] if len(days) == 1 else f"{names[days[0]]}-{names[days[-1]]}"
        else:
            span = ",".join(names[d] for d in days)
        close = "24:00" if self.close == time.max else self.close.strftime("%H:%M")
        return f"{span} {self.open.strftime('%H:%M')}-{close}"


@dataclass(frozen=True)
class Staffing:
    """Hours, agents on shift and the longest waiting line one group accepts."""

    hours: Hours = field(default_factory=Hours)
    agents: int = 1
    max_waiting: int = 50
    handle_seconds: float = 300.0

    def has_room(self, waiting: int) -> bool:
        return waiting < self.max_waiting

    def expected_wait_seconds(self, position: int, handle_seconds: Optional[float] = None) -> float:
        """Rounds of service ahead of the customer × the time one ticket takes."""
        per_ticket = handle_seconds if handle_seconds and handle_seconds > 0 else self.handle_seconds
        rounds = math.ceil(max(position, 1) / max(self.agents, 1))
        return rounds * per_ticket


def wait_minutes(seconds: float) -> int:
    """Whole minutes to tell a customer (at least 1)."""
    return max(1, math.ceil(seconds / 60))
