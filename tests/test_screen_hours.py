"""manverify.screen.hours: D223-9 canvassing hours on the called person's clock and holidays."""
from datetime import datetime, timezone

import holidays
import pytest

from manverify.screen import hours, plan
from manverify.screen.hours import SUBDIVISIONS, canvass_allowed, canvass_check, holidays_for, local_time
from manverify.tn import canonical


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


PARIS = ("Europe/Paris", "metropole")


@pytest.mark.parametrize("instant, allowed, reason", [
    ("2026-12-08T08:59:59", False, "before 10:00"),   # Tuesday, 09:59:59 in Paris (UTC+1)
    ("2026-12-08T09:00:00", True, "weekday hours"),   # 10:00:00
    ("2026-12-08T11:59:59", True, "weekday hours"),   # 12:59:59
    ("2026-12-08T12:00:00", False, "13:00-14:00 pause"),  # 13:00:00 exactly
    ("2026-12-08T12:59:59", False, "13:00-14:00 pause"),
    ("2026-12-08T13:00:00", True, "weekday hours"),   # 14:00:00
    ("2026-12-08T18:59:59", True, "weekday hours"),   # 19:59:59
    ("2026-12-08T19:00:00", False, "after 20:00"),    # 20:00:00 exactly
    ("2026-12-12T10:00:00", False, "weekend"),        # Saturday 11:00
    ("2026-12-13T10:00:00", False, "weekend"),        # Sunday
    ("2026-05-01T10:00:00", False, "holiday: Labor Day"),      # Friday 1 May
    ("2026-07-14T10:00:00", False, "holiday: National Day"),   # Tuesday 14 July
    ("2026-11-11T10:00:00", False, "holiday: Armistice Day"),
])
def test_paris_windows(instant, allowed, reason):
    c = canvass_check(utc(instant), *PARIS)
    assert (c.allowed, c.reason) == (allowed, reason)
    assert canvass_allowed(utc(instant), *PARIS) is allowed


def test_paris_summer_time_moves_the_window_in_utc():
    # 08:30 UTC is 09:30 the Monday before summer time (29 March 2026) and 10:30 the Monday after.
    assert not canvass_allowed(utc("2026-03-23T08:30:00"), *PARIS)
    assert canvass_allowed(utc("2026-03-30T08:30:00"), *PARIS)
    assert canvass_check(utc("2026-03-30T08:30:00"), *PARIS).local == "2026-03-30T10:30:00+02:00"
    # 18:30 UTC is 20:30 the Monday before winter time (25 October 2026) and 19:30 the Monday after.
    assert not canvass_allowed(utc("2026-10-19T18:30:00"), *PARIS)
    assert canvass_allowed(utc("2026-10-26T18:30:00"), *PARIS)


def test_the_called_persons_clock_not_ours():
    # 06:30 UTC: 07:30 in Paris, 10:30 in Réunion (UTC+4), 09:30 in Mayotte (UTC+3), 02:30 in Guadeloupe.
    t = utc("2026-12-08T06:30:00")
    assert not canvass_allowed(t, *PARIS)
    assert canvass_allowed(t, "Indian/Reunion", "reunion")
    assert not canvass_allowed(t, "Indian/Mayotte", "mayotte")
    assert not canvass_allowed(t, "America/Guadeloupe", "guadeloupe")
    # 19:30 UTC: 20:30 in Paris, 15:30 in Guadeloupe and Martinique, 16:30 in Guyane.
    t = utc("2026-12-08T19:30:00")
    assert not canvass_allowed(t, *PARIS)
    for number in ("0590123456", "0696123456", "0694123456"):
        c = plan.classify(canonical(number))
        assert canvass_allowed(t, c.tz, c.territory), number


def test_overseas_holidays():
    # Monday 20 December 2027: abolition of slavery in Réunion, an ordinary Monday in Paris.
    t = utc("2027-12-20T08:00:00")  # 12:00 in Réunion, 09:00 in Paris
    assert canvass_check(t, "Indian/Reunion", "reunion") == (False, "holiday: Abolition of Slavery", "2027-12-20T12:00:00+04:00")
    assert canvass_allowed(utc("2027-12-20T10:00:00"), *PARIS)
    # Monday 27 April 2026 in Mayotte, Wednesday 27 May in Guadeloupe, Wednesday 10 June in Guyane.
    assert not canvass_allowed(utc("2026-04-27T08:00:00"), "Indian/Mayotte", "mayotte")
    assert canvass_allowed(utc("2026-04-27T08:00:00"), "Indian/Reunion", "reunion")
    assert not canvass_allowed(utc("2026-05-27T15:00:00"), "America/Guadeloupe", "guadeloupe")
    assert canvass_allowed(utc("2026-05-27T15:00:00"), "America/Martinique", "martinique")
    assert not canvass_allowed(utc("2026-06-10T15:00:00"), "America/Cayenne", "guyane")


def test_national_holidays_apply_overseas_too():
    assert canvass_check(utc("2026-05-01T06:30:00"), "Indian/Reunion", "reunion").reason == "holiday: Labor Day"
    assert canvass_check(utc("2026-07-14T15:00:00"), "America/Cayenne", "guyane").reason == "holiday: National Day"


@pytest.mark.parametrize("now", [None, float("nan"), float("inf"), -float("inf"), "2026-12-08", 1e20, True, [1]])
def test_no_time_never_raises(now):
    assert canvass_check(now, *PARIS) == (False, "no time", None)


@pytest.mark.parametrize("tz, territory", [(None, None), ("Not/AZone", "metropole"), ("", "atlantis"), ("../etc", None)])
def test_unknown_zone_or_territory_is_judged_on_paris(tz, territory):
    t = utc("2026-12-08T09:30:00")  # 10:30 in Paris
    assert canvass_check(t, tz, territory) == (True, "weekday hours", "2026-12-08T10:30:00+01:00")
    assert not canvass_allowed(utc("2026-07-14T09:30:00"), tz, territory)


def test_holidays_are_computed_once_per_territory_and_year():
    a = holidays_for("reunion", 2031)
    assert holidays_for("reunion", 2031) is a
    assert holidays_for("reunion", 2032) is not a


def test_every_plan_territory_has_a_subdivision_of_the_package():
    assert set(SUBDIVISIONS) == set(plan.TZ)
    for sub in SUBDIVISIONS.values():
        assert sub is None or sub in holidays.France.subdivisions


def test_local_time():
    assert local_time(utc("2026-12-08T06:30:00"), "Indian/Reunion").hour == 10
    assert local_time(utc("2026-12-08T06:30:00"), None).hour == 7
    assert hours.DEFAULT_TZ == "Europe/Paris"
