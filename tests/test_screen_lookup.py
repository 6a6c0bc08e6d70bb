"""Caller look-up and user reports (screen.lookup, screen.report) on local counters and on a real
redis-server: activity, verification shares, reports once per reporter, the reporters' rate limit,
the label/score table, bad input, and no number or reporter in clear in the store."""
from __future__ import annotations

import re
from contextlib import closing

import pytest
import redis

from manverify.errors import ConfigError, UsageError
from manverify.result import Result
from manverify.screen import lookup as lookup_mod
from manverify.screen.engine import Screen
from manverify.screen.lookup import CATEGORIES, TABLE, ReportLimited, judge
from .redishelp import dump_store, redis_cluster, redis_server  # noqa: F401 - fixtures

T0 = 1_796_000_000.0  # a Tuesday of 2026, any time works: the look-up has no hours
DAY = 86400
CANVASSER = "0162000001"
MOBILE = "0612345678"
SECRET = "s" * 32
PASSED_A = Result(True, None, "", attest="A")
PASSED_B = Result(True, None, "", attest="B")
FAILED = Result(False, 438, "bad signature")
UNSIGNED = Result(False, 428, "no Identity header")


def make(backend="local", url=None, **config):
    config.setdefault("reload", False)
    if backend == "redis":
        config["counters"] = {"backend": "redis", "url": url, "key_secret": SECRET, "budget_ms": 500}
    return Screen.from_dict(config)


@pytest.fixture(params=["local", "redis"])
def screen(request):
    if request.param == "local":
        s = make()
    else:
        server = request.getfixturevalue("redis_server")
        s = make("redis", server.url)
    yield s
    s.close()


def signals(d):
    return {s["signal"]: s["weight"] for s in d["signals"]}


# ---------------------------------------------------------------------------- the table, written once
def test_the_docstring_table_is_the_table():
    rows = re.findall(r"^    ([a-z.]+)\s+(-?\d+)\s+(-?\d+)\s+(\S+)\s+(\d+)  ", lookup_mod.__doc__, re.M)
    documented = {name: (int(p), int(c), None if lab == "-" else lab, int(f)) for name, p, c, lab, f in rows}
    assert documented == {name: tuple(row) for name, row in TABLE.items()}


def test_labels_rank_fraud_over_spam_over_canvassing_and_the_score_is_clamped():
    assert judge([("plan.canvassing", "canvassing", 1)])[:2] == ("canvassing", 20)
    assert judge([("plan.canvassing", "c", 1), ("pattern.burst", {}, 1)])[:2] == ("suspected-spam", 50)
    found = [("plan.canvassing", "c", 1), ("pattern.burst", {}, 1), ("reports.scam", 9, 9), ("list.dno", "n", 1)]
    label, score, sig = judge(found)
    assert (label, score) == ("fraud", 100)
    assert [s["weight"] for s in sig] == [20, 30, 80, 80]  # reports.scam capped at 80
    assert judge([("verified.attested", 1.0, 1)])[:2] == (None, 0)  # never below 0
    assert judge([("reports.scam", 2, 2)])[:2] == (None, 40)  # under its label's threshold: score only


def test_the_allow_list_overrides_everything():
    label, score, sig = judge([("list.dno", "number", 1), ("reports.scam", 5, 5)], allowed=True)
    assert (label, score) == (None, 0)
    assert sig[-1] == {"signal": "list.allow", "value": True, "weight": -160}


# ---------------------------------------------------------------------------- look-up
def test_a_canvassing_number_nobody_reported(screen):
    d = screen.lookup(CANVASSER, now=T0)
    assert d["number"] == "+33162000001" and d["class"] == "canvassing" and d["holder"] is None
    assert (d["label"], d["score"], signals(d)) == ("canvassing", 20, {"plan.canvassing": 20})
    assert d["reports"]["total"] == 0 and d["activity"]["calls_30d"] == 0 and not d["degraded"]
    assert d["versions"]["plan"].startswith("Arcep")
    assert set(d) >= {"number", "class", "holder", "lists", "activity", "verified", "reports", "label", "score",
                      "signals"}


def test_a_look_up_counts_nothing(screen):
    for _ in range(3):
        assert screen.lookup(MOBILE, now=T0)["activity"]["calls_30d"] == 0
    assert screen.check(MOBILE, "0198765432", now=T0).rules == ()
    d = screen.lookup("+33612345678", now=T0 + 1)
    assert (d["activity"]["calls_30d"], d["activity"]["calls_recent"], d["activity"]["callees_recent"]) == (1, 1, 1)
    assert (d["label"], d["score"], d["signals"]) == (None, 0, [])


def test_activity_from_checks_and_feedback(screen):
    for i in range(40):
        screen.check(MOBILE, f"01987654{i:02d}", now=T0 + i)
    for i in range(25):
        screen.feedback(MOBILE, answered=i >= 22, duration=30.0, now=T0 + 50)  # 22 unanswered of 25
    d = screen.lookup(MOBILE, now=T0 + 60)
    a = d["activity"]
    assert (a["calls_30d"], a["callees_recent"], a["outcomes_30d"], a["short_30d"]) == (40, 40, 25, 22)
    assert a["short_share"] == 0.88 and a["calls_recent"] > 30  # the burst window slides by slots
    assert signals(d) == {"pattern.burst": 30, "activity.short": 30}
    assert (d["label"], d["score"]) == ("suspected-spam", 60)
    later = screen.lookup(MOBILE, now=T0 + 2 * 3600)  # the hour's windows passed, the month's did not
    assert signals(later) == {"activity.short": 30} and later["activity"]["calls_30d"] == 40
    gone = screen.lookup(MOBILE, now=T0 + 32 * DAY)
    assert gone["activity"]["calls_30d"] == 0 and gone["score"] == 0


def test_fanout_is_not_held_against_the_canvassing_ranges(screen):
    for i in range(60):
        screen.check(CANVASSER, f"06123456{i:02d}", now=T0 + 50 * i)
        screen.check(MOBILE, f"06123456{i:02d}", now=T0 + 50 * i)
    assert "pattern.fanout" in signals(screen.lookup(MOBILE, now=T0 + 3000))
    assert "pattern.fanout" not in signals(screen.lookup(CANVASSER, now=T0 + 3000))


def test_verification_outcomes_per_attestation(screen):
    for i, result in enumerate([PASSED_A] * 6 + [PASSED_B] * 2 + [FAILED] * 3 + [UNSIGNED] * 4):
        screen.check(MOBILE, f"01987654{i:02d}", now=T0 + 10 * i, result=result)
    screen.check(MOBILE, "0198765499", now=T0 + 200)  # no result given: a call, no outcome
    v = screen.lookup(MOBILE, now=T0 + 300)["verified"]
    assert v == {"calls": 15, "verified": 8, "share": 0.533, "attestation": {"A": 6, "B": 2, "C": 0},
                 "failed": 3, "unsigned": 4}


def test_spoofed_signatures_and_full_attestation_move_the_score(screen):
    spoofed, trusted = "0611111111", "0622222222"
    for i in range(12):
        screen.check(spoofed, "0198765432", now=T0 + 10 * i, result=FAILED if i % 2 else PASSED_A)
        screen.check(trusted, "0198765432", now=T0 + 10 * i, result=PASSED_A)
    s = screen.lookup(spoofed, now=T0 + 200)
    assert (s["label"], signals(s)) == ("suspected-spam", {"verified.failed": 20})
    t = screen.lookup(trusted, now=T0 + 200)
    assert (t["label"], t["score"], signals(t)) == (None, 0, {"verified.attested": -20})
    for r in range(3):
        screen.report(trusted, "silent", f"user-{r}", now=T0 + 300)
    t = screen.lookup(trusted, now=T0 + 300)
    assert (t["label"], t["score"]) == ("suspected-spam", 10)  # 30 for the reports, -20 for attestation A


# ---------------------------------------------------------------------------- reports
def test_reports_move_the_label_and_score(screen):
    first = screen.report(MOBILE, "scam", "alice", now=T0)
    assert first["counted"] and (first["label"], first["score"]) == (None, 20)
    assert first["reports"]["scam"] == 1
    screen.report(MOBILE, "scam", "bob", now=T0 + 1)
    third = screen.report(MOBILE, "scam", "carol", now=T0 + 2)
    assert (third["label"], third["score"], signals(third)) == ("fraud", 60, {"reports.scam": 60})
    for r in range(3):
        d = screen.report(CANVASSER, "canvassing", f"user-{r}", now=T0)
    assert (d["label"], d["score"]) == ("canvassing", 50)  # the range's 20 and 3 reports' 30
    for r in range(4):
        d = screen.report("0633333333", "other", f"user-{r}", now=T0)
    assert (d["label"], d["score"]) == (None, 20)  # 'other' needs 5 reporters to label
    d = screen.report("0633333333", "other", "user-4", now=T0)
    assert (d["label"], d["score"]) == ("suspected-spam", 20)


def test_a_reporter_counts_once_per_number_per_30_days(screen):
    assert screen.report(MOBILE, "scam", "alice", now=T0)["counted"]
    again = screen.report(MOBILE, "canvassing", "alice", now=T0 + DAY)  # the first category stays
    assert not again["counted"]
    assert (again["reports"]["scam"], again["reports"]["canvassing"]) == (1, 0)
    assert screen.report("0699999999", "scam", "alice", now=T0 + DAY)["counted"]  # another number
    later = screen.report(MOBILE, "silent", "alice", now=T0 + 32 * DAY)
    assert later["counted"] and later["reports"] == {"canvassing": 0, "scam": 0, "silent": 1, "other": 0,
                                                     "total": 1, "window_s": 30 * DAY}


def test_a_report_flood_is_refused_until_it_slows_down(redis_server):
    for s in (make(lookup={"report_limit": 3}), make("redis", redis_server.url, lookup={"report_limit": 3})):
        with closing(s):
            for i in range(3):
                s.report(f"06000000{i:02d}", "scam", "flooder", now=T0)
            with pytest.raises(ReportLimited, match="report_limit 3"):
                s.report("0600000099", "scam", "flooder", now=T0 + 1)
            assert s.lookup("0600000099", now=T0 + 1)["reports"]["total"] == 0  # refused, not absorbed
            assert s.report("0600000099", "scam", "someone-else", now=T0 + 1)["counted"]
            with pytest.raises(ReportLimited):  # refused reports keep counting
                s.report("0600000098", "scam", "flooder", now=T0 + 3600)
            assert s.report("0600000098", "scam", "flooder", now=T0 + 2 * DAY)["counted"]
    assert issubclass(ReportLimited, UsageError)


# ---------------------------------------------------------------------------- data: lists, MAJNUM
MAJNUM_HEADER = "EZABPQM;Tranche_Debut;Tranche_Fin;Mnémo;Territoire;Date_Attribution\r\n"


def test_lists_and_majnum(tmp_path):
    (tmp_path / "block.txt").write_text("0612345678\n")
    (tmp_path / "dno.txt").write_text("0140000000-0140000099\n")
    (tmp_path / "allow.txt").write_text("0140000001\n")
    rows = "06123;0612300000;0612399999;ORAN;Métropole;01/01/2000\r\n" \
           "01400;0140000000;0140099999;FRTE;Métropole;01/01/2000\r\n"
    (tmp_path / "MAJNUM.csv").write_bytes((MAJNUM_HEADER + rows).encode("cp1252"))
    s = Screen.from_dict({"reload": False, "plan": {"majnum": "MAJNUM.csv"},
                          "lists": {"block": ["block.txt"], "dno": ["dno.txt"], "allow": ["allow.txt"]}}, tmp_path)
    d = s.lookup(MOBILE, now=T0)
    assert d["holder"] == "ORAN" and list(d["lists"]) == ["block"]
    assert {"plan", "majnum", "lists"} <= set(d["versions"])
    assert d["lists"]["block"]["source"].endswith("block.txt:1") and d["lists"]["block"]["entry"] == "number"
    assert (d["label"], d["score"]) == ("suspected-spam", 50)
    d = s.lookup("0140000002", now=T0)
    assert (d["holder"], d["label"], d["score"], list(d["lists"])) == ("FRTE", "fraud", 80, ["dno"])
    d = s.lookup("0140000001", now=T0)  # on the DNO range, but the operator allows it
    assert (d["label"], d["score"], sorted(d["lists"])) == (None, 0, ["allow", "dno"])
    d = s.lookup("0699999999", now=T0)
    assert (d["holder"], d["label"], signals(d)) == (None, "suspected-spam", {"plan.unassigned": 60})
    d = s.lookup("+3361234567", now=T0)  # a digit short
    assert d["class"] == "invalid" and "plan.invalid" in signals(d)
    assert s.lookup("+1 202 555 0100", now=T0)["class"] == "foreign"


# ---------------------------------------------------------------------------- bad input, configuration
@pytest.mark.parametrize("call, named", [
    (lambda s: s.lookup("hello"), "number"),
    (lambda s: s.lookup(612345678), "number"),
    (lambda s: s.lookup(None), "number"),
    (lambda s: s.lookup(MOBILE, now="yesterday"), "now"),
    (lambda s: s.lookup(MOBILE, now=float("nan")), "now"),
    (lambda s: s.report("06 12 AB", "scam", "a"), "number"),
    (lambda s: s.report(MOBILE, "spam", "a"), "category"),
    (lambda s: s.report(MOBILE, None, "a"), "category"),
    (lambda s: s.report(MOBILE, "scam", ""), "reporter"),
    (lambda s: s.report(MOBILE, "scam", "x" * 257), "reporter"),
    (lambda s: s.report(MOBILE, "scam", 42), "reporter"),
    (lambda s: s.report(MOBILE, "scam", "a\nb"), "reporter"),
])
def test_garbage_raises_usage_error_naming_the_problem(call, named):
    s = make()
    with pytest.raises(UsageError, match=named):
        call(s)
    assert s.lookup(MOBILE)["reports"]["total"] == 0


@pytest.mark.parametrize("lookup, key", [
    ({"report_limit": 0}, "report_limit"),
    ({"report_limit": 2.5}, "report_limit"),
    ({"report_window_s": 1}, "report_window_s"),
    ({"report_window_s": True}, "report_window_s"),
    ({"reports": 3}, "reports"),
    ("strict", "lookup"),
])
def test_configuration_mistakes_name_the_key(lookup, key):
    with pytest.raises(ConfigError, match=key):
        make(lookup=lookup)


def test_categories_are_the_contract():
    assert CATEGORIES == ("canvassing", "scam", "silent", "other")


# ---------------------------------------------------------------------------- Redis: one exchange, privacy
def _commands(server):
    info = redis.Redis.from_url(server.url).info("commandstats")
    return {k: v["calls"] for k, v in info.items()}


def test_a_look_up_is_one_script_on_redis(redis_server):
    with closing(make("redis", redis_server.url)) as s:
        s.check(MOBILE, "0198765432", now=T0)
        before = _commands(redis_server)
        s.lookup(MOBILE, now=T0)
        after = _commands(redis_server)
    grew = {k[8:] for k in after if after[k] != before.get(k, 0)} - {"info", "hello"}  # the stats' own
    # one EVALSHA; the rest ran inside it, and only read (nothing counted)
    assert after["cmdstat_evalsha"] - before["cmdstat_evalsha"] == 1
    assert grew - {"evalsha"} <= {"hgetall", "hdel", "exists", "pfcount"}


def test_no_number_and_no_reporter_in_clear_in_redis(redis_server):
    numbers = [f"06{i:08d}" for i in range(11111111, 11111131)] + [CANVASSER]
    reporters = [f"reporter-{i}@example.org" for i in range(5)]
    with closing(make("redis", redis_server.url, lookup={"report_limit": 50})) as s:
        for i, n in enumerate(numbers):
            s.check(n, numbers[(i + 1) % len(numbers)], now=T0, result=PASSED_A if i % 2 else FAILED)
            s.feedback(n, answered=bool(i % 3), now=T0)
            for r in reporters:
                s.report(n, CATEGORIES[i % 4], r, now=T0)
            assert s.lookup(n, now=T0)["reports"]["total"] == len(reporters)
    dumped = dump_store(redis_server.url)
    assert len(dumped) > 10 * len(numbers)
    blob = b"\n".join(dumped)
    forms = set()
    for n in numbers:
        forms |= {n.encode(), n[1:].encode(), ("33" + n[1:]).encode()}
    for r in reporters:
        forms |= {r.encode(), r.split("@")[0].encode()}
    assert not [f for f in forms if f in blob]


def test_check_many_counts_for_the_look_up_too(screen):
    calls = [{"orig": MOBILE, "dest": f"01987654{i:02d}", "now": T0 + i, "result": PASSED_B} for i in range(5)]
    screen.check_many(calls + [{"orig": "garbage", "dest": MOBILE}])
    d = screen.lookup(MOBILE, now=T0 + 10)
    assert d["activity"]["calls_30d"] == 5 and d["verified"]["attestation"]["B"] == 5


def test_a_store_down_gives_a_degraded_look_up_not_an_error(redis_server):
    with closing(make("redis", redis_server.url)) as s:
        s.check(MOBILE, "0198765432", now=T0)
        assert not s.lookup(MOBILE, now=T0)["degraded"]
        redis_server.kill()
        d = s.lookup(MOBILE, now=T0)
        assert d["degraded"] and d["class"] == "mobile"  # local counters: this process's counts only
        assert s.report(MOBILE, "scam", "alice", now=T0)["degraded"]


def test_on_a_cluster_a_number_is_one_slot(redis_cluster):  # noqa: F811
    cluster = redis_cluster
    s = Screen.from_dict({"reload": False, "counters": {"backend": "redis", "url": cluster.url,
                                                        "key_secret": SECRET, "budget_ms": 500}})
    with closing(s):
        numbers = [f"06{i:08d}" for i in range(20000000, 20000030)]
        for i, n in enumerate(numbers):
            s.check(n, MOBILE, now=T0, result=PASSED_A)
            for r in range(3):
                s.report(n, "scam", f"user-{i}-{r}", now=T0)
        for n in numbers:
            d = s.lookup(n, now=T0)
            assert (d["label"], d["activity"]["calls_30d"], d["degraded"]) == ("fraud", 1, False)
        assert s.stats()["counters"]["errors"] == 0
        assert all(redis.Redis(port=node.port).dbsize() for node in cluster.nodes)  # spread over the masters
        before = [_commands(node).get("cmdstat_evalsha", 0) for node in cluster.nodes]
        s.lookup(numbers[7], now=T0)
        after = [_commands(node).get("cmdstat_evalsha", 0) for node in cluster.nodes]
        assert sum(after) - sum(before) == 1  # one script, on the master of the number's slot
