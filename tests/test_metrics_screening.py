"""Screening's Prometheus counters: decisions per action, rules per outcome, degraded calls,
refused list reloads; written out by metrics.flush() like the verifier's, never twice."""
import os

import pytest

from manverify import ticker
from manverify.screen.engine import Screen

from .conftest import NOW

prometheus_client = pytest.importorskip("prometheus_client", reason="prometheus_client (extra manverify[metrics]) is not installed")

from manverify import metrics  # noqa: E402

ORIG, DEST = "+33612345678", "+33198765432"
SERIES = (
    ("manverify_screening_decisions_total", {"action": "allow"}),
    ("manverify_screening_decisions_total", {"action": "reject"}),
    ("manverify_screening_decisions_total", {"action": "tag"}),
    ("manverify_screening_rules_total", {"rule": "pattern.burst", "outcome": "reject"}),
    ("manverify_screening_rules_total", {"rule": "plan.canvassing", "outcome": "tag"}),
    ("manverify_screening_rules_total", {"rule": "list.block", "outcome": "reported"}),
    ("manverify_screening_degraded_total", {}),
    ("manverify_screening_errors_total", {}),
)


def _samples(series=SERIES):
    return [prometheus_client.REGISTRY.get_sample_value(name, labels) or 0.0 for name, labels in series]


def test_decisions_and_rules_are_counted_once(tmp_path):
    (tmp_path / "block.txt").write_text("+33612000999\n")
    screen = Screen.from_dict({"lists": {"block": ["block.txt"]}, "rules": {
        "canvass.hours": {"enabled": False}, "pattern.burst": {"limit": 2},
        "list.block": {"report_only": True}}}, tmp_path, reload=False)
    metrics.register()
    metrics.track_screen(screen)
    metrics.flush()  # what other screens counted before, out of the way
    before = _samples()
    for i in range(4):  # 2 allowed, then 2 rejected by pattern.burst
        screen.check(ORIG, DEST, now=NOW + i)
    screen.check("+33162000001", DEST, now=NOW)  # canvassing range: tagged
    screen.check("+33612000999", DEST, now=NOW)  # on the block list, reported only: allowed
    metrics.flush()
    after = _samples()
    assert [a - b for a, b in zip(after, before)] == [3, 2, 1, 2, 1, 1, 0, 0]
    metrics.flush()
    assert _samples() == after  # nothing new, nothing added twice


def test_a_refused_list_reload_is_counted(tmp_path):
    listing = tmp_path / "block.txt"
    listing.write_text("+33612000999\n")
    screen = Screen.from_dict({"lists": {"block": ["block.txt"]}}, tmp_path, reload=True)
    metrics.register()
    metrics.track_screen(screen)
    metrics.flush()
    refused = [("manverify_screening_reloads_total", {"data": "lists", "outcome": "refused"})]
    applied = [("manverify_screening_reloads_total", {"data": "lists", "outcome": "applied"})]
    before = _samples(refused + applied)
    bad = tmp_path / "block.new"
    bad.write_text("+33612000999\nthis is not a number\n")
    os.replace(bad, listing)  # a new file (another inode): the watch sees it
    ticker.run_once()
    metrics.flush()
    assert [a - b for a, b in zip(_samples(refused + applied), before)] == [1, 0]
    assert screen.check("+33612000999", DEST, now=NOW).action == "reject"  # the old list stays


def test_a_refused_majnum_file_is_counted(tmp_path):
    from pathlib import Path

    good = Path(__file__).parent / "fixtures" / "majnum" / "MAJNUM.csv"
    path = tmp_path / "MAJNUM.csv"
    path.write_bytes(good.read_bytes())
    screen = Screen.from_dict({"plan": {"majnum": "MAJNUM.csv"}}, tmp_path, reload=False)
    metrics.register()
    metrics.track_screen(screen)
    metrics.flush()
    series = [("manverify_screening_reloads_total", {"data": "majnum", "outcome": o}) for o in ("refused", "applied")]
    before = _samples(series)
    truncated = tmp_path / "MAJNUM.new"
    truncated.write_bytes(good.read_bytes()[:300])  # a download cut short: far fewer ranges
    os.replace(truncated, path)
    assert not screen.majnum.check()
    metrics.flush()
    assert [a - b for a, b in zip(_samples(series), before)] == [1, 0]
