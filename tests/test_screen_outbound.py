"""The originating side: customers, each outbound rule through check(), refusals, authorise() for
signing services, outbound_status() for scrubbing, bad input, and the same on a real Redis."""
import datetime as dt
import os
import time
from zoneinfo import ZoneInfo

import pytest
import redis
from hypothesis import given, settings, strategies as st

from manverify.errors import ConfigError, UsageError
from manverify.screen import outbound
from manverify.screen.engine import ERROR_RULE, Screen
from manverify.screen.rules import OUTBOUND, OUTBOUND_ONLY, RULES
from .redishelp import redis_cluster, redis_server  # noqa: F401 - fixtures

PARIS = ZoneInfo("Europe/Paris")
TUESDAY_11 = dt.datetime(2026, 12, 8, 11, 0, tzinfo=PARIS).timestamp()  # canvassing hours, no holiday
TUESDAY_21 = dt.datetime(2026, 12, 8, 21, 0, tzinfo=PARIS).timestamp()
CHRISTMAS_11 = dt.datetime(2026, 12, 25, 11, 0, tzinfo=PARIS).timestamp()
DAY = 86400
RANGE_NUMBER = "0162000001"  # in acme's range, a canvassing number
MOBILE = "0612345678"  # acme's own 06 number (outside the canvassing ranges)
PERSON = "0698765432"
SECRET = "s" * 32


def customers(tmp_path=None):
    out = {
        "acme": {"canvasser": True, "numbers": ["0162000000-0162000999", MOBILE, "0163*"]},
        "bank": {"numbers": ["+33 1 40 00 00 00", "0163*"]},
        "other": {"canvasser": True, "numbers": ["0163*"]},
    }
    if tmp_path is not None:
        (tmp_path / "bloctel.txt").write_text("# Bloctel extract\n0611111111\n+33 6 22 22 22 22\n")
        (tmp_path / "acme-red.txt").write_text("0633*\n0644444444 expires=2026-12-01\n")
        out["acme"]["opposition"] = ["bloctel.txt", "acme-red.txt"]
        out["other"]["opposition"] = ["bloctel.txt", "acme-red.txt"]
    return out


def screen(tmp_path=None, **config):
    config.setdefault("reload", False)
    config.setdefault("customers", customers(tmp_path))
    return Screen.from_dict(config, tmp_path or ".")


def out(s, orig, dest=PERSON, now=TUESDAY_11, customer="acme"):
    return s.check(orig, dest, now=now, direction="outbound", customer=customer)


# ---------------------------------------------------------------------------- configuration
@pytest.mark.parametrize("config, key", [
    ("acme", "customers must map"),
    ({"acme": ["0612345678"]}, "customers.acme must be a mapping"),
    ({"acme": {"number": ["0612345678"]}}, r"customers\.acme: unknown key.*number"),
    ({"acme": {"canvasser": "yes"}}, r"customers\.acme\.canvasser"),
    ({"acme": {"numbers": "0612345678"}}, r"customers\.acme\.numbers must be a list"),
    ({"acme": {"numbers": ["0612345678", "06-not-a-number"]}}, r"customers\.acme\.numbers\[1\]"),
    ({"acme": {"numbers": ["0612345678", 612345678]}}, r"customers\.acme\.numbers\[1\] must be a text"),
    ({"acme": {"numbers": ["# only a comment"]}}, r"customers\.acme\.numbers\[0\] is empty"),
    ({"acme": {"numbers": ["0162000999-0162000000"]}}, r"customers\.acme\.numbers\[0\].*after its last"),
    ({"acme": {"number_files": ["/nonexistent/numbers.txt"]}}, r"customers\.acme\.number_files: cannot read"),
    ({"acme": {"opposition": "bloctel.txt"}}, r"customers\.acme\.opposition must be a list"),
    ({"acme": {"opposition": ["/nonexistent/bloctel.txt"]}}, r"customers\.acme\.opposition: cannot read"),
    ({"": {}}, "customer id"),
])
def test_customers_mistakes_name_the_key(config, key):
    with pytest.raises(ConfigError, match=key):
        Screen.from_dict({"customers": config, "reload": False})


def test_a_bad_line_in_an_opposition_file_is_named_with_its_line(tmp_path):
    (tmp_path / "red.txt").write_text("0611111111\n\n06 12 nonsense\n")
    with pytest.raises(ConfigError, match=r"customers\.acme\.opposition: .*red\.txt:3"):
        Screen.from_dict({"customers": {"acme": {"opposition": ["red.txt"]}}, "reload": False}, tmp_path)


@pytest.mark.parametrize("rule", OUTBOUND_ONLY)
def test_outbound_rules_take_the_rules_settings_and_their_checks(rule):
    assert RULES[rule].check.__doc__.startswith(rule) and "Source" in RULES[rule].check.__doc__
    with pytest.raises(ConfigError, match=rf"rules\.{rule}\.action"):
        screen(rules={rule: {"action": "drop"}})
    with pytest.raises(ConfigError, match="unknown setting"):
        screen(rules={rule: {"treshold": 1}})


def test_direction_and_customer_mistakes_are_the_callers():
    s = screen()
    with pytest.raises(UsageError, match="direction"):
        s.check(MOBILE, PERSON, direction="outgoing", customer="acme")
    with pytest.raises(UsageError, match="customer"):
        s.check(MOBILE, PERSON, customer="acme")  # inbound calls have no customer
    for call in ({"orig": MOBILE, "dest": PERSON, "direction": "outbound", "customer": "acme"},
                 {"orig": MOBILE, "dest": PERSON, "customer": "acme"}):
        with pytest.raises(UsageError, match="inbound calls only"):
            s.check_many([call])  # never screened as an inbound call by mistake


# ---------------------------------------------------------------------------- outbound.unauthorised-number
@pytest.mark.parametrize("orig", [RANGE_NUMBER, "+33162000999", MOBILE, "0163123456", "33163000000"])
def test_a_number_the_customer_may_show_passes(orig):
    d = out(screen(), orig)
    assert d.action == "allow" and d.rules == (), d


@pytest.mark.parametrize("orig", ["0162001000", "0612345679", "0140000000", None, "anonymous", ""])
def test_any_other_number_is_unauthorised_and_rejected(orig):
    d = out(screen(), orig)
    assert "outbound.unauthorised-number" in d.rules and d.action == "reject" and d.code == 608
    assert d.values["outbound.unauthorised-number"]["customer"] == "acme"
    assert d.reason_header() == 'SIP;cause=608;text="outbound.unauthorised-number"'


def test_customers_numbers_are_their_own():
    s = screen()
    assert out(s, "0140000000", customer="bank").rules == ()
    assert "outbound.unauthorised-number" in out(s, "0140000000", customer="acme").rules
    assert "outbound.unauthorised-number" in out(s, RANGE_NUMBER, customer="bank").rules


def test_an_expired_entry_no_longer_lets_the_number_through():
    s = Screen.from_dict({"reload": False, "customers": {"acme": {"numbers": ["0612345678 expires=2026-12-01"]}}})
    before = dt.datetime(2026, 11, 30, 11, 0, tzinfo=PARIS).timestamp()
    assert out(s, MOBILE, now=before).rules == ()
    assert out(s, MOBILE).rules == ("outbound.unauthorised-number",)


def test_numbers_from_a_file(tmp_path):
    (tmp_path / "acme-numbers.txt").write_text("# acme\n0590123456\n0270*\n")
    s = Screen.from_dict({"reload": False, "customers": {"acme": {"number_files": ["acme-numbers.txt"]}}}, tmp_path)
    assert out(s, "0590123456").rules == () and out(s, "0270123456").rules == ()
    assert out(s, MOBILE).rules == ("outbound.unauthorised-number",)


@pytest.mark.parametrize("customer", ["nobody", None, 42, ["acme"], "", "acme\n"])
def test_an_unknown_customer_is_a_rejection_naming_the_problem(customer):
    d = out(screen(), RANGE_NUMBER, customer=customer)
    assert d.action == "reject" and d.rules == ("outbound.unauthorised-number",)
    assert d.values["outbound.unauthorised-number"]["why"] == "unknown customer"


# ---------------------------------------------------------------------------- outbound.canvass-range
def test_a_canvasser_outside_the_ranges_is_exempt_up_to_five_distinct_numbers():
    s = screen()
    for i in range(5):
        assert out(s, MOBILE, f"07000000{i:02d}", now=TUESDAY_11 + i).rules == ()
    assert out(s, MOBILE, "0700000001", now=TUESDAY_11 + 10).rules == ()  # the same person: still 5
    d = out(s, MOBILE, "0700000099", now=TUESDAY_11 + 20)
    assert d.rules == ("outbound.canvass-range",) and d.action == "reject"
    assert d.values["outbound.canvass-range"] == {"distinct": 6, "limit": 5, "window": 30 * DAY,
                                                  "number_class": "mobile"}
    # 31 days later the window holds nobody
    assert out(s, MOBILE, "0700000098", now=TUESDAY_11 + 31 * DAY).rules == ()


def test_the_canvassing_ranges_and_non_canvassers_never_fire_canvass_range():
    s = screen()
    for i in range(8):
        assert "outbound.canvass-range" not in out(s, RANGE_NUMBER, f"07000000{i:02d}", now=TUESDAY_11 + i).rules
        assert out(s, "0140000000", f"07000000{i:02d}", now=TUESDAY_11 + i, customer="bank").rules == ()


def test_the_exemption_limit_is_configurable():
    s = screen(rules={"outbound.canvass-range": {"limit": 2}})
    rules = [out(s, MOBILE, f"07000000{i:02d}", now=TUESDAY_11 + i).rules for i in range(3)]
    assert rules == [(), (), ("outbound.canvass-range",)]


# ---------------------------------------------------------------------------- canvass.hours
def test_a_canvasser_out_of_hours_fires_canvass_hours_whatever_number_it_shows():
    s = screen()
    for orig in (RANGE_NUMBER, MOBILE):
        d = out(s, orig, now=TUESDAY_21)
        assert d.rules == ("canvass.hours",) and d.label == "canvassing-out-of-hours", d
        assert d.values["canvass.hours"]["tz"] == "Europe/Paris"
    assert out(s, RANGE_NUMBER, now=CHRISTMAS_11).rules == ("canvass.hours",)


def test_canvass_hours_are_the_called_persons_on_the_originating_side_too():
    half_past_ten = dt.datetime(2026, 12, 8, 10, 30, tzinfo=PARIS).timestamp()  # 13:30 in La Réunion
    s = screen()
    assert out(s, RANGE_NUMBER, now=half_past_ten).rules == ()
    d = out(s, RANGE_NUMBER, "0692123456", now=half_past_ten)
    assert d.rules == ("canvass.hours",) and d.values["canvass.hours"]["tz"] == "Indian/Reunion"


def test_a_non_canvasser_calls_at_night_unless_it_shows_a_canvassing_number():
    s = screen()
    assert out(s, "0140000000", now=TUESDAY_21, customer="bank").rules == ()
    assert out(s, "0163000000", now=TUESDAY_21, customer="bank").rules == ("canvass.hours",)


# ---------------------------------------------------------------------------- canvass.repeat
def test_the_fifth_call_to_one_person_in_30_days_is_refused_whatever_number_called():
    s = screen()
    shown = [RANGE_NUMBER, MOBILE, "0162000002", "0163000000"]
    assert [out(s, o, now=TUESDAY_11 + i).rules for i, o in enumerate(shown)] == [()] * 4
    d = out(s, RANGE_NUMBER, now=TUESDAY_11 + 10)
    assert d.rules == ("canvass.repeat",) and d.action == "reject"
    assert d.values["canvass.repeat"] == {"count": 5, "limit": 4, "window": 30 * DAY}
    assert out(s, RANGE_NUMBER, "0698765433", now=TUESDAY_11 + 11).rules == ()  # another person
    assert out(s, "0163000000", now=TUESDAY_11 + 12, customer="other").rules == ()  # another professional
    assert out(s, RANGE_NUMBER, now=TUESDAY_11 + 35 * DAY).rules == ()  # the window has passed (a Tuesday)


def test_a_non_canvasser_is_not_held_to_the_repeat_limit():
    s = screen()
    assert all(out(s, "0140000000", now=TUESDAY_11 + i, customer="bank").rules == () for i in range(8))


# ---------------------------------------------------------------------------- canvass.refused
def test_no_call_within_60_days_of_a_refusal():
    s = screen()
    assert out(s, RANGE_NUMBER).rules == ()
    s.feedback(RANGE_NUMBER, "+33 6 98 76 54 32", refused=True, customer="acme", now=TUESDAY_11 + 60)
    d = out(s, "0163000000", now=TUESDAY_11 + 120)
    assert d.rules == ("canvass.refused",) and d.action == "reject"
    assert d.values["canvass.refused"] == {"refusals": 1, "window": 60 * DAY}
    assert out(s, RANGE_NUMBER, "0698765433", now=TUESDAY_11 + 130).rules == ()
    assert out(s, "0163000000", now=TUESDAY_11 + 140, customer="other").rules == ()
    assert out(s, RANGE_NUMBER, now=TUESDAY_11 + 62 * DAY).rules == ()


@pytest.mark.parametrize("args", [
    dict(dest=PERSON, refused=True, customer="nobody"),
    dict(dest="garbage", refused=True, customer="acme"),
    dict(dest=None, refused=True, customer="acme"),
    dict(dest=PERSON, refused="yes", customer="acme"),
    dict(dest=PERSON, refused=True, customer="acme", now=float("nan")),
])
def test_feedback_of_bad_data_never_raises_and_counts_no_refusal(args):
    s = screen()
    s.feedback(RANGE_NUMBER, **args)
    refused = s.outbound_status("acme", PERSON).refused
    assert refused == (1 if args.get("now") is not None else 0)  # NaN: the clock's time, counted


# ---------------------------------------------------------------------------- canvass.opposition
@pytest.mark.parametrize("dest, source", [("0611111111", "bloctel.txt:2"), ("0622222222", "bloctel.txt:3"),
                                          ("0633000000", "acme-red.txt:1")])
def test_numbers_on_the_opposition_lists_are_refused(tmp_path, dest, source):
    d = out(screen(tmp_path), RANGE_NUMBER, dest)
    assert d.rules == ("canvass.opposition",) and d.action == "reject"
    v = d.values["canvass.opposition"]
    assert v["source"].endswith(source) and v["scope"] == "global"


def test_an_expired_opposition_entry_and_customers_without_lists(tmp_path):
    s = screen(tmp_path)
    assert out(s, RANGE_NUMBER, "0644444444").rules == ()  # its red-list entry expired on 1 December
    assert out(s, "0163000000", "0611111111", customer="bank").rules == ()  # bank has no list


def test_customers_naming_the_same_files_share_one_table(tmp_path):
    s = screen(tmp_path)
    tables = s._out_tables.customers
    assert tables["acme"].opposition is tables["other"].opposition
    assert out(s, "0163000000", "0611111111", customer="other").rules == ("canvass.opposition",)


def test_a_changed_opposition_file_applies_after_the_reload(tmp_path):
    s = screen(tmp_path, reload=True)
    try:
        assert out(s, RANGE_NUMBER, "0655555555").rules == ()
        path = tmp_path / "acme-red.txt"
        path.write_text(path.read_text() + "0655555555\n")
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
        for watch in s._watches:
            watch.check()
        assert out(s, RANGE_NUMBER, "0655555555", now=TUESDAY_11 + 1).rules == ("canvass.opposition",)
        path.write_text("06 nonsense\n")  # a bad new file keeps the tables in use
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
        for watch in s._watches:
            watch.check()
        assert out(s, RANGE_NUMBER, "0655555555", now=TUESDAY_11 + 2).rules == ("canvass.opposition",)
        assert "acme-red.txt:1" in s.stats()["reloads"]["customers' numbers and opposition"]["error"]
    finally:
        s.close()


# ---------------------------------------------------------------------------- actions, modes, inbound
def test_outbound_rules_follow_their_configured_action_and_report_only():
    s = screen(rules={"outbound.unauthorised-number": {"action": "tag", "label": "unverified-number"},
                      "canvass.repeat": {"report_only": True}})
    d = out(s, "0612000000")
    assert d.action == "tag" and d.label == "unverified-number"
    for i in range(5):
        d = out(s, RANGE_NUMBER, now=TUESDAY_11 + i)
    assert d.rules == ("canvass.repeat",) and d.reported == ("canvass.repeat",) and d.action == "allow"
    assert out(screen(mode="report-only"), "0612000000").action == "allow"
    assert out(screen(rules={"outbound.unauthorised-number": {"enabled": False}}), "0612000000").rules == ()


def test_inbound_calls_never_meet_the_outbound_rules():
    s = screen()
    for i in range(8):
        d = s.check(RANGE_NUMBER, PERSON, now=TUESDAY_11 + i)
        assert not set(d.rules) & set(OUTBOUND_ONLY)
    assert d.rules == ("plan.canvassing", "pattern.repeat")  # the inbound cap (4) as before
    assert set(OUTBOUND) - set(OUTBOUND_ONLY) == {"canvass.hours"}


def test_outbound_decisions_are_counted_in_stats_and_json_ready():
    import json

    s = screen()
    d = out(s, "0612000000")
    json.dumps(d.to_dict())
    stats = s.stats()
    assert stats["by_action"]["reject"] == 1
    assert stats["by_rule"]["outbound.unauthorised-number"] == {"reject": 1}


numbers = st.one_of(st.none(), st.text(max_size=20), st.sampled_from([RANGE_NUMBER, MOBILE, PERSON, "+33*31#"]),
                    st.integers(), st.floats())


@settings(max_examples=150, deadline=None)
@given(orig=numbers, dest=numbers, now=st.one_of(st.none(), st.floats(allow_nan=True), st.integers(), st.text()),
       customer=st.one_of(st.none(), st.text(max_size=8), st.sampled_from(["acme", "bank"]), st.integers()))
def test_any_outbound_input_gives_a_decision(orig, dest, now, customer):
    d = SHARED.check(orig, dest, now=now, direction="outbound", customer=customer)
    assert d.action in ("allow", "tag", "reject") and ERROR_RULE not in d.rules


SHARED = screen()


# ---------------------------------------------------------------------------- authorise (signing)
def test_authorise_gives_a_for_a_number_the_customer_may_show():
    a = screen().authorise("acme", RANGE_NUMBER, PERSON, now=TUESDAY_11)
    assert (a.attest, a.rules, a.error) == ("A", (), "") and a.decision.action == "allow"


def test_authorise_refuses_another_number_or_signs_b_when_told():
    s = screen()
    a = s.authorise("acme", "0612000000", PERSON, now=TUESDAY_11)
    assert a.attest is None and a.rules == ("outbound.unauthorised-number",) and "unauthorised-number" in a.error
    b = s.authorise("acme", "0612000000", "0698765433", now=TUESDAY_11, unauthorised="sign-b")
    assert b.attest == "B" and b.rules == ()
    with pytest.raises(ConfigError, match="unauthorised"):
        s.authorise("acme", RANGE_NUMBER, PERSON, unauthorised="sign-c")


def test_authorise_never_signs_for_an_unknown_customer():
    s = screen(rules={"outbound.unauthorised-number": {"report_only": True}})
    for customer in ("nobody", None, 7):
        a = s.authorise(customer, RANGE_NUMBER, PERSON, now=TUESDAY_11, unauthorised="sign-b")
        assert a.attest is None and a.error == "unknown customer"


def test_authorise_refuses_when_any_outbound_rule_acts_and_not_when_it_only_reports():
    s = screen()
    a = s.authorise("acme", RANGE_NUMBER, PERSON, now=TUESDAY_21)  # canvass.hours tags: still no signature
    assert a.attest is None and a.rules == ("canvass.hours",)
    s.feedback(RANGE_NUMBER, PERSON, refused=True, customer="acme", now=TUESDAY_11)
    a = s.authorise("acme", "0612000000", PERSON, now=TUESDAY_11 + 1, unauthorised="sign-b")
    assert a.attest is None and a.rules == ("canvass.refused",)
    r = screen(rules={"canvass.hours": {"report_only": True}, "outbound.unauthorised-number": {"report_only": True}})
    assert r.authorise("acme", RANGE_NUMBER, PERSON, now=TUESDAY_21).attest == "A"
    # a reported unauthorised number is still not vouched for
    assert r.authorise("acme", "0612000000", PERSON, now=TUESDAY_11).attest == "B"


def test_authorise_after_a_fault_of_screening_signs_b(monkeypatch):
    s = screen()
    monkeypatch.setattr(s, "_outbound_call", lambda *a, **k: 1 / 0)
    a = s.authorise("acme", RANGE_NUMBER, PERSON, now=TUESDAY_11)
    assert a.attest == "B" and a.decision.rules == (ERROR_RULE,)


# ---------------------------------------------------------------------------- outbound_status (scrubbing)
def test_outbound_status_reads_without_counting(tmp_path):
    s = screen(tmp_path)
    for i in range(3):
        out(s, RANGE_NUMBER, now=TUESDAY_11 + i)
    status = s.outbound_status("acme", "+33698765432", now=TUESDAY_11 + 5)
    assert status == outbound.OutboundStatus(opposition=False, refused=0, repeat=3)
    assert s.outbound_status("acme", PERSON, now=TUESDAY_11 + 6).repeat == 3  # reading counted nothing
    assert out(s, RANGE_NUMBER, now=TUESDAY_11 + 7).rules == ()  # the 4th call
    s.feedback(RANGE_NUMBER, PERSON, refused=True, customer="acme", now=TUESDAY_11 + 8)
    assert s.outbound_status("acme", PERSON, now=TUESDAY_11 + 9) == (False, 1, 4)
    assert s.outbound_status("acme", "0611111111", now=TUESDAY_11).opposition is True
    assert s.outbound_status("other", PERSON, now=TUESDAY_11) == (False, 0, 0)


def test_outbound_status_many_in_one_exchange_and_bad_input(tmp_path):
    s = screen(tmp_path)
    out(s, RANGE_NUMBER, now=TUESDAY_11)
    got = s.outbound_status_many("acme", [PERSON, "garbage", None, "0611111111"], now=TUESDAY_11 + 1)
    assert got == [(False, 0, 1), None, None, (True, 0, 0)]
    with pytest.raises(UsageError, match="customer"):
        s.outbound_status("nobody", PERSON)
    with pytest.raises(UsageError, match="dest"):
        s.outbound_status("acme", "not a number")


# ---------------------------------------------------------------------------- real Redis
def redis_screen(url, **extra):
    counters = {"backend": "redis", "url": url, "key_secret": SECRET, "budget_ms": 500, "probe_interval_s": 0.05}
    return screen(counters=counters, **extra)


def test_outbound_series_on_redis_decide_as_the_local_ones(redis_server):
    remote, local = redis_screen(redis_server.url), screen()
    try:
        script = [(MOBILE, f"07000000{i:02d}") for i in range(7)] + [(RANGE_NUMBER, PERSON)] * 6
        for i, (o, d) in enumerate(script):
            a, b = out(remote, o, d, now=TUESDAY_11 + i), out(local, o, d, now=TUESDAY_11 + i)
            assert a.rules == b.rules and not a.degraded, (i, a, b)
        for s in (remote, local):
            s.feedback(RANGE_NUMBER, "0698765499", refused=True, customer="acme", now=TUESDAY_11 + 50)
        assert out(remote, "0163000000", "0698765499", now=TUESDAY_11 + 60).rules == ("canvass.refused",)
        assert remote.outbound_status("acme", PERSON, now=TUESDAY_11 + 70) == (False, 0, 6)
        assert remote.outbound_status("acme", "0698765499", now=TUESDAY_11 + 70) == (False, 1, 1)
        # two processes sharing the store see one count
        again = redis_screen(redis_server.url)
        try:
            assert out(again, RANGE_NUMBER, PERSON, now=TUESDAY_11 + 80).values["canvass.repeat"]["count"] == 7
        finally:
            again.close()
    finally:
        remote.close()


def test_no_number_and_no_customer_in_clear_in_the_store(redis_server):
    s = redis_screen(redis_server.url)
    try:
        out(s, MOBILE, PERSON)
        s.feedback(MOBILE, PERSON, refused=True, customer="acme", now=TUESDAY_11)
        r = redis.Redis.from_url(redis_server.url)
        keys = r.keys("*")
        assert any(b"out-refused" in k for k in keys) and any(b"out-callees" in k for k in keys)
        dump = b" ".join(keys)
        for needle in (b"612345678", b"698765432", b"acme"):
            assert needle not in dump
        assert all(0 < r.pttl(k) <= (60 * DAY + DAY) * 1000 for k in keys)
    finally:
        s.close()


def test_a_store_down_still_gives_outbound_decisions(redis_server):
    s = redis_screen(redis_server.url)
    try:
        redis_server.kill()
        d = out(s, "0612000000")
        assert d.degraded and d.rules == ("outbound.unauthorised-number",)
        assert s.authorise("acme", RANGE_NUMBER, PERSON, now=TUESDAY_11).attest == "A"
    finally:
        s.close()


def test_outbound_series_on_a_redis_cluster(redis_cluster):  # noqa: F811
    # each op is tagged with its own subject: a customer's counts stay whole when spread over slots
    remote, local = redis_screen(redis_cluster.url), screen()
    try:
        script = [(MOBILE, f"07000000{i:02d}") for i in range(7)] + [(RANGE_NUMBER, PERSON)] * 6
        for i, (o, d) in enumerate(script):
            a, b = out(remote, o, d, now=TUESDAY_11 + i), out(local, o, d, now=TUESDAY_11 + i)
            assert a.rules == b.rules and a.values == b.values and not a.degraded, (i, a, b)
        remote.feedback(RANGE_NUMBER, PERSON, refused=True, customer="acme", now=TUESDAY_11 + 50)
        assert remote.outbound_status_many("acme", [PERSON, "0700000001"], now=TUESDAY_11 + 60) == [
            (False, 1, 6), (False, 0, 1)]
    finally:
        remote.close()
