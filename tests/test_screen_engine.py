"""The screening engine: configuration, each rule through check(), actions, modes, bad input."""
import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from manverify.errors import ConfigError
from manverify.result import Result
from manverify.screen.engine import ERROR_RULE, Screen
from manverify.screen.rules import RULES

from .docpages import block
from .redishelp import redis_server  # noqa: F401 - fixture

PARIS = ZoneInfo("Europe/Paris")
# Tuesday 8 December 2026, 11:00 in Paris: canvassing hours, no holiday.
TUESDAY_11 = dt.datetime(2026, 12, 8, 11, 0, tzinfo=PARIS).timestamp()
CANVASSER = "0162000001"
PERSON = "0612345678"


def screen(**config):
    config.setdefault("reload", False)
    return Screen.from_dict(config)


# ---------------------------------------------------------------------------- configuration
@pytest.mark.parametrize("config, key", [
    ({"rules": {"pattern.bursty": {}}}, "pattern.bursty"),
    ({"rules": {"pattern.burst": {"limit": 0}}}, "rules.pattern.burst.limit"),
    ({"rules": {"pattern.burst": {"limit": 2.5}}}, "rules.pattern.burst.limit"),
    ({"rules": {"pattern.burst": {"limit": True}}}, "rules.pattern.burst.limit"),
    ({"rules": {"pattern.burst": {"window": float("nan")}}}, "rules.pattern.burst.window"),
    ({"rules": {"pattern.short": {"share": 1.5}}}, "rules.pattern.short.share"),
    ({"rules": {"pattern.burst": {"action": "drop"}}}, "rules.pattern.burst.action"),
    ({"rules": {"pattern.burst": {"report_only": "yes"}}}, "rules.pattern.burst.report_only"),
    ({"rules": {"pattern.burst": {"treshold": 3}}}, "treshold"),
    ({"rules": {"pattern.burst": {"action": "divert"}}}, "divert_to"),
    ({"mode": "dry-run"}, "screening.mode"),
    ({"reject_code": 486}, "screening.reject_code"),
    ({"counters": {"backend": "memcached"}}, "backend"),
    ({"lists": {"block": ["/nonexistent/block.txt"]}}, "block"),
    ({"plan": {"majnum": "/nonexistent/MAJNUM.csv"}}, "MAJNUM"),
    ({"colour": "blue"}, "colour"),
])
def test_configuration_mistakes_name_the_key(config, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        screen(**config)


def test_every_rule_function_cites_its_source():
    for rule_id, rule in RULES.items():
        doc = rule.check.__doc__ or ""
        assert doc.startswith(rule_id), rule_id
        assert "Source" in doc, rule_id


# ---------------------------------------------------------------------------- rules through check()
def test_canvassing_range_in_hours_is_tagged_with_a_label():
    d = screen().check(CANVASSER, PERSON, now=TUESDAY_11)
    assert d.action == "tag" and d.label == "canvassing"
    assert d.rules == ("plan.canvassing",) and d.acted == ("plan.canvassing",)
    assert d.code is None and d.reason_header() == ""


def test_canvassing_after_eight_in_the_evening_fires_canvass_hours():
    evening = dt.datetime(2026, 12, 8, 20, 30, tzinfo=PARIS).timestamp()
    d = screen(rules={"canvass.hours": {"action": "reject"}}).check(CANVASSER, PERSON, now=evening)
    assert "canvass.hours" in d.rules and d.action == "reject" and d.code == 608
    assert d.reason_header() == 'SIP;cause=608;text="canvass.hours"'


def test_canvass_hours_use_the_called_persons_time_zone():
    # 11:00 in Paris is 14:00 in La Réunion (UTC+4; Paris is UTC+1 in December): in hours there
    # too; 10:30 in Paris is 13:30 in La Réunion, the lunch break, out of hours for a Réunion
    # subscriber only.
    half_past_ten = dt.datetime(2026, 12, 8, 10, 30, tzinfo=PARIS).timestamp()
    s = screen()
    assert "canvass.hours" not in s.check(CANVASSER, PERSON, now=half_past_ten).rules
    assert "canvass.hours" in s.check(CANVASSER, "0692123456", now=half_past_ten).rules


def test_canvass_hours_know_french_public_holidays():
    christmas = dt.datetime(2026, 12, 25, 11, 0, tzinfo=PARIS).timestamp()
    assert "canvass.hours" in screen().check(CANVASSER, PERSON, now=christmas).rules


def test_platform_numbers_are_reported_and_let_through():
    d = screen().check("0937000001", PERSON, now=TUESDAY_11)
    assert d.rules == ("plan.platform",) and d.action == "allow"


def test_invalid_french_number():
    d = screen().check("+3361234567", PERSON, now=TUESDAY_11)
    assert d.rules == ("plan.invalid",) and d.action == "reject" and d.code == 608


def test_burst_rejects_after_the_limit_with_608_and_a_reason_naming_the_rule():
    s = screen(rules={"pattern.burst": {"limit": 3, "window": 60}})
    got = [s.check("0978123456", f"06000000{i:02d}", now=TUESDAY_11 + i).action for i in range(5)]
    assert got == ["allow", "allow", "allow", "reject", "reject"]
    d = s.check("0978123456", "0600000099", now=TUESDAY_11 + 5)
    assert d.values["pattern.burst"] == {"count": 6, "limit": 3, "window": 60}
    # past the window the number is forgiven
    assert s.check("0978123456", "0600000098", now=TUESDAY_11 + 200).action == "allow"


def test_reject_code_603_when_configured():
    s = screen(reject_code=603, rules={"pattern.burst": {"limit": 1}})
    s.check("0978123456", PERSON, now=TUESDAY_11)
    d = s.check("0978123456", PERSON, now=TUESDAY_11)
    assert (d.code, d.reason) == (603, "Decline")


def test_fanout_counts_distinct_callees_and_exempts_canvassing_ranges():
    s = screen(rules={"pattern.fanout": {"limit": 5, "action": "reject"}})
    for i in range(6):
        mobile = s.check("0611111111", f"01000000{i:02d}", now=TUESDAY_11 + i)
        canvass = s.check(CANVASSER, f"01000000{i:02d}", now=TUESDAY_11 + i)
    assert mobile.action == "reject" and mobile.values["pattern.fanout"]["distinct"] == 6
    assert "pattern.fanout" not in canvass.rules
    again = s.check("0622222222", "0100000001", now=TUESDAY_11 + 7)  # the same callee again is not new
    assert "pattern.fanout" not in again.rules


def test_repeat_holds_canvassing_numbers_to_four_calls_in_30_days():
    s = screen()
    got = [("pattern.repeat" in s.check(CANVASSER, PERSON, now=TUESDAY_11 + day * 86400).rules) for day in range(6)]
    assert got == [False, False, False, False, True, True]
    person = [("pattern.repeat" in s.check("0611111111", PERSON, now=TUESDAY_11 + i).rules) for i in range(6)]
    assert not any(person)  # a person calling a person five times is not harassment


def test_flood_counts_calls_to_one_number():
    s = screen(rules={"pattern.flood": {"limit": 3}})
    actions = [s.check(f"06123400{i:02d}", "0140000000", now=TUESDAY_11 + i).action for i in range(5)]
    assert actions == ["allow", "allow", "allow", "reject", "reject"]


def test_short_calls_fed_back_fire_pattern_short():
    s = screen(rules={"pattern.short": {"min_outcomes": 5, "share": 0.8}})
    for i in range(5):
        s.check("+22501020304", f"06000000{i:02d}", now=TUESDAY_11 + i, entry="international")
        s.feedback("+22501020304", f"06000000{i:02d}", answered=False, duration=0, now=TUESDAY_11 + i + 1)
    d = s.check("+22501020304", "0600000099", now=TUESDAY_11 + 10, entry="international")
    assert d.rules == ("pattern.short",) and d.label == "suspected-spam"
    assert d.values["pattern.short"]["short"] == 5


def test_long_answered_calls_are_not_short():
    s = screen(rules={"pattern.short": {"min_outcomes": 3}})
    for i in range(4):
        s.feedback("0611111111", PERSON, answered=True, duration=120, now=TUESDAY_11 + i)
    assert s.check("0611111111", PERSON, now=TUESDAY_11 + 5).rules == ()


def test_international_rules_report_policy_decisions_under_their_ids():
    failed = Result(False, 438, "signature does not verify")
    s = screen()
    fixed = s.check("+33140000000", PERSON, now=TUESDAY_11, entry="international", result=failed)
    mobile = s.check("+33611111111", PERSON, now=TUESDAY_11, entry="international", result=failed)
    assert fixed.rules == ("intl.fr-fixed",) and fixed.action == "reject"
    assert mobile.rules == ("intl.fr-mobile",) and mobile.action == "mask"
    verified = Result(True, None, "ok", attest="A")
    assert s.check("+33611111111", PERSON, now=TUESDAY_11, entry="international", result=verified).rules == ()


def _write(path, text):
    path.write_text(text)
    return str(path)


def test_lists_allow_overrides_block_and_dno_per_partner(tmp_path):
    block = _write(tmp_path / "block.txt", "# robocallers\n0978*\n")
    allow = _write(tmp_path / "allow.txt", "0978000001\n")
    dno = _write(tmp_path / "dno.txt", "0140000000-0140000099\n")
    partner_block = _write(tmp_path / "p.txt", "0611111111\n")
    s = screen(lists={"block": [block], "allow": [allow], "dno": [dno],
                      "partners": {"carrier-x": {"block": [partner_block]}}})
    blocked = s.check("0978000002", PERSON, now=TUESDAY_11)
    assert blocked.rules == ("list.block",) and blocked.action == "reject"
    assert blocked.values["list.block"]["source"].endswith("block.txt:2")
    allowed = s.check("0978000001", PERSON, now=TUESDAY_11)
    assert allowed.action == "allow" and allowed.acted == ("list.allow",)
    assert set(allowed.rules) == {"list.allow", "list.block"}
    assert s.check("0140000042", PERSON, now=TUESDAY_11).rules == ("list.dno",)
    assert s.check("0611111111", PERSON, now=TUESDAY_11, partner="carrier-x").action == "reject"
    assert s.check("0611111111", PERSON, now=TUESDAY_11, partner="carrier-y").action == "allow"
    assert "lists" in s.check("0611111111", PERSON, now=TUESDAY_11).versions


MAJNUM_HEADER = "EZABPQM;Tranche_Debut;Tranche_Fin;Mnémo;Territoire;Date_Attribution\r\n"


def test_unassigned_numbers_need_the_majnum_file(tmp_path):
    rows = "".join(f"061234{m};061234{m}000;061234{m}999;ORAN;Métropole;01/02/2010\r\n" for m in range(10))
    (tmp_path / "MAJNUM.csv").write_bytes((MAJNUM_HEADER + rows).encode("cp1252"))
    s = Screen.from_dict({"plan": {"majnum": "MAJNUM.csv"}, "reload": False}, tmp_path)
    assert s.check("0612345678", PERSON, now=TUESDAY_11).rules == ()
    d = s.check("0698765432", PERSON, now=TUESDAY_11)
    assert d.rules == ("plan.unassigned",) and d.action == "reject" and "majnum" in d.versions
    assert "plan.unassigned" not in screen().check("0698765432", PERSON, now=TUESDAY_11).rules


# ---------------------------------------------------------------------------- modes
def test_report_only_mode_reports_every_rule_and_acts_on_none():
    s = screen(mode="report-only", rules={"pattern.burst": {"limit": 1}})
    s.check("0978123456", PERSON, now=TUESDAY_11)
    d = s.check("0978123456", PERSON, now=TUESDAY_11)
    assert d.action == "allow" and d.code is None
    assert d.rules == ("pattern.burst",) and d.reported == ("pattern.burst",) and d.acted == ()


def test_one_rule_report_only_while_others_act():
    s = screen(rules={"plan.canvassing": {"report_only": True}, "pattern.burst": {"limit": 1}})
    assert s.check(CANVASSER, PERSON, now=TUESDAY_11).action == "allow"
    s.check("0978123456", PERSON, now=TUESDAY_11)
    assert s.check("0978123456", PERSON, now=TUESDAY_11).action == "reject"


def test_a_disabled_rule_never_fires():
    assert screen(rules={"plan.canvassing": {"enabled": False}}).check(CANVASSER, PERSON, now=TUESDAY_11).rules == ()


def test_divert_carries_the_target():
    s = screen(divert_to="sip:announcement@127.0.0.1", rules={"plan.canvassing": {"action": "divert"}})
    d = s.check(CANVASSER, PERSON, now=TUESDAY_11)
    assert d.action == "divert" and d.divert_to == "sip:announcement@127.0.0.1"


def test_the_strongest_action_wins_and_acted_names_its_rules():
    s = screen(rules={"pattern.burst": {"limit": 1}})
    s.check(CANVASSER, "0100000001", now=TUESDAY_11)
    d = s.check(CANVASSER, "0100000002", now=TUESDAY_11)
    assert d.rules == ("plan.canvassing", "pattern.burst")
    assert d.action == "reject" and d.acted == ("pattern.burst",) and d.label is None


# ---------------------------------------------------------------------------- bad input and faults
garbage = st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40),
                    st.binary(max_size=10), st.lists(st.integers(), max_size=2), st.just("anonymous"),
                    st.from_regex(r"\+?[0-9 .\-]{0,20}", fullmatch=True))


@settings(max_examples=300, deadline=None)
@given(orig=garbage, dest=garbage, now=garbage, entry=garbage, partner=garbage)
def test_any_call_input_gives_a_decision(orig, dest, now, entry, partner):
    d = _GARBAGE_SCREEN.check(orig, dest, now=now, entry=entry, partner=partner, result=object())
    assert d.action in ("allow", "tag", "mask", "divert", "reject")
    assert ERROR_RULE not in d.rules
    json.dumps(d.to_dict())
    _GARBAGE_SCREEN.feedback(orig, dest, answered=entry, duration=now, now=partner)


_GARBAGE_SCREEN = Screen.from_dict({"reload": False})


def test_a_fault_of_its_own_lets_the_call_continue_and_is_counted(monkeypatch, caplog):
    s = screen()

    def broken(*args):
        raise RuntimeError("store exploded")

    monkeypatch.setattr(s.counters, "observe", broken)
    d = s.check("0611111111", PERSON, now=TUESDAY_11)
    assert d.action == "allow" and d.rules == (ERROR_RULE,)
    assert s.stats()["errors"] == 1
    assert "store exploded" in caplog.text


def test_stats_count_actions_and_rules():
    s = screen(rules={"pattern.burst": {"limit": 1}})
    s.check(CANVASSER, PERSON, now=TUESDAY_11)
    s.check(CANVASSER, PERSON, now=TUESDAY_11)
    st_ = s.stats()
    assert st_["calls"] == 2 and st_["by_action"]["tag"] == 1 and st_["by_action"]["reject"] == 1
    assert st_["by_rule"]["plan.canvassing"] == {"tag": 2}
    assert st_["by_rule"]["pattern.burst"] == {"reject": 1}


def test_check_many_gives_the_same_decisions_as_one_by_one():
    calls = [{"orig": "0978123456", "dest": f"06000000{i:02d}", "now": TUESDAY_11 + i} for i in range(6)]
    calls.append({"orig": 42, "dest": None})
    one = screen(rules={"pattern.burst": {"limit": 3}})
    many = screen(rules={"pattern.burst": {"limit": 3}})
    expected = [one.check(**c).action for c in calls]
    assert [d.action for d in many.check_many(calls)] == expected


# ---------------------------------------------------------------------------- the gated rule walk
numbers = st.one_of(st.sampled_from([CANVASSER, "0937000001", "+3361234567", "0978000002", "0978000001",
                                     "0140000042", "0611111111", "+22501020304", "0698765432", "anonymous"]),
                    st.from_regex(r"0[1-9][0-9]{8}", fullmatch=True))


@pytest.fixture(scope="module")
def listed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gated")
    (tmp / "block.txt").write_text("0978*\n0611111111\n")
    (tmp / "allow.txt").write_text("0978000001\n")
    (tmp / "dno.txt").write_text("0140000000-0140000099\n")
    rows = "".join(f"061234{m};061234{m}000;061234{m}999;ORAN;Métropole;01/02/2010\r\n" for m in range(10))
    (tmp / "MAJNUM.csv").write_bytes((MAJNUM_HEADER + rows).encode("cp1252"))
    return Screen.from_dict({"lists": {"block": ["block.txt"], "allow": ["allow.txt"], "dno": ["dno.txt"]},
                             "plan": {"majnum": "MAJNUM.csv"}, "reload": False,
                             "rules": {"pattern.burst": {"limit": 2}, "pattern.flood": {"limit": 2}}}, tmp)


@settings(max_examples=300, deadline=None)
@given(orig=numbers, dest=numbers, hour=st.floats(0, 24 * 7), entry=st.sampled_from(["national", "international"]),
       verified=st.sampled_from([None, True, False]))
def test_the_gated_walk_fires_what_running_every_rule_fires(listed, orig, dest, hour, entry, verified):
    result = None if verified is None else Result(verified, None if verified else 438, "")
    call = listed._call(orig, dest, TUESDAY_11 + hour * 3600, entry, None, result)
    every = tuple((r, RULES[r].check, s) for r, s in listed.settings.items() if s["enabled"])
    assert listed._fire(call, listed._rules_for(call)) == listed._fire(call, every)


# ---------------------------------------------------------------------------- the documented configuration
def test_the_documented_configuration_starts_as_written(tmp_path, redis_server):
    config = json.loads(block("docs/screening.md", "screening-config"))
    config["counters"]["url"] = redis_server.url  # the page's own Redis is this test's
    (tmp_path / "lists").mkdir()
    for name in ("block", "allow", "dno", "carrier-x-block"):
        (tmp_path / "lists" / f"{name}.txt").write_text("# empty to start with\n")
    (tmp_path / "lists" / "block.txt").write_text("0978*\n")
    rows = "".join(f"061234{m};061234{m}000;061234{m}999;ORAN;Métropole;01/02/2010\r\n" for m in range(10))
    (tmp_path / "MAJNUM.csv").write_bytes((MAJNUM_HEADER + rows).encode("cp1252"))
    s = Screen.from_dict(config, tmp_path, reload=False)
    try:
        d = s.check("0978123456", PERSON, now=TUESDAY_11)
        assert d.action == "allow" and d.reported == ("list.block", "plan.unassigned")  # report-only
        assert s.check("0612345678", PERSON, now=TUESDAY_11).rules == ()
        assert s.counters.stats()["backend"] == "redis" and not d.degraded
    finally:
        s.close()
