"""When canvassing calls may reach a person (rule canvass.hours).

Code de la consommation D223-9 (décret 2022-1313, from 1 March 2023): canvassing calls only
Monday to Friday, 10:00-13:00 and 14:00-20:00, never on a public holiday (Code du travail
L3133-1) — in the CALLED person's time, so a call to Réunion is judged on Réunion's clock and
Réunion's holidays (20 December, the abolition of slavery). The windows are read as half-open:
a call placed at 13:00:00 or 20:00:00 is outside (it would run into the pause or the evening),
one placed at 10:00:00 or 14:00:00 is inside.

Holidays come from the `holidays` package (holidays.France with the overseas department's
subdivision), computed once per (territory, year). Metropolitan numbers use the national list:
since 2023 a geographic number says nothing about where its holder lives, so Alsace-Moselle's
two extra days (Good Friday, 26 December) cannot be told from the number.
"""
from __future__ import annotations

import math
from datetime import date, datetime
from typing import Dict, NamedTuple, Optional, Tuple
from zoneinfo import ZoneInfo

import holidays

DEFAULT_TZ = "Europe/Paris"
# Territories of manverify.screen.plan -> the holidays package's subdivision of France.
SUBDIVISIONS: Dict[str, Optional[str]] = {
    "metropole": None,
    "guadeloupe": "971",
    "martinique": "972",
    "guyane": "973",
    "reunion": "974",
    "mayotte": "976",
}
WINDOWS = ((10 * 60, 13 * 60), (14 * 60, 20 * 60))  # minutes after local midnight, [start, end)
_CACHE_MAX = 256  # (territory, year) pairs: a handful in practice; bounded against odd inputs

_holiday_cache: Dict[Tuple[Optional[str], int], Dict[date, str]] = {}
_zones: Dict[str, ZoneInfo] = {}


class CanvassTime(NamedTuple):
    allowed: bool
    reason: str  # "weekday hours", "weekend", "holiday: <name>", "before 10:00", "13:00-14:00 pause", ...
    local: Optional[str]  # the called person's local time, ISO 8601, None when `now` is no time


def _zone(tz: Optional[str]) -> ZoneInfo:
    zone = _zones.get(tz or DEFAULT_TZ)
    if zone is None:
        try:
            zone = ZoneInfo(tz or DEFAULT_TZ)
        except (ValueError, KeyError, OSError):  # no such zone (call data): judge on Paris time
            zone = ZoneInfo(DEFAULT_TZ)
        if len(_zones) < _CACHE_MAX:
            _zones[tz or DEFAULT_TZ] = zone
    return zone


def holidays_for(territory: Optional[str], year: int) -> Dict[date, str]:
    """French public holidays of a year in a territory (unknown territories: the national list)."""
    subdiv = SUBDIVISIONS.get(territory or "metropole")
    key = (subdiv, year)
    days = _holiday_cache.get(key)
    if days is None:
        days = dict(holidays.France(subdiv=subdiv, years=year))
        if len(_holiday_cache) >= _CACHE_MAX:
            _holiday_cache.clear()
        _holiday_cache[key] = days
    return days


def local_time(now: float, tz: Optional[str]) -> datetime:
    """The wall-clock time at `now` (seconds since the epoch) in zone `tz` (None: Paris)."""
    return datetime.fromtimestamp(now, _zone(tz))


def canvass_check(now: float, tz: Optional[str], territory: Optional[str]) -> CanvassTime:
    """Whether a canvassing call placed at `now` may reach someone in `territory`/`tz`, and why.
    Never raises: a `now` that is no time gives allowed=False."""
    local = _local(now, tz)
    if local is None:
        return CanvassTime(False, "no time", None)
    return CanvassTime(*_judge(local, territory), local.isoformat(timespec="seconds"))


def _local(now: float, tz: Optional[str]) -> Optional[datetime]:
    """local_time(now, tz), or None when `now` is no time."""
    try:
        if isinstance(now, bool) or not math.isfinite(now):
            return None
        return local_time(now, tz)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _judge(local: datetime, territory: Optional[str]) -> Tuple[bool, str]:
    if local.weekday() >= 5:
        return False, "weekend"
    name = holidays_for(territory, local.year).get(local.date())
    if name is not None:
        return False, f"holiday: {name}"
    minute = local.hour * 60 + local.minute
    for start, end in WINDOWS:
        if start <= minute < end:
            return True, "weekday hours"
    if minute < WINDOWS[0][0]:
        return False, "before 10:00"
    if minute < WINDOWS[1][0]:
        return False, "13:00-14:00 pause"
    return False, "after 20:00"


def canvass_allowed(now: float, tz: Optional[str], territory: Optional[str]) -> bool:
    """canvass_check(...).allowed, without formatting the local time."""
    local = _local(now, tz)
    return local is not None and _judge(local, territory)[0]

