"""`manverify report` on screening decisions: a per-rule table (fired, share, acted by action,
reported), alone or after the per-operator table, from `screen --batch` records or nested ones."""
import json

from manverify import report
from manverify.cli import main

from .conftest import NOW

DEST = "0198765432"


def _screen_records(tmp_path, capsys, screening, calls):
    config = tmp_path / "screening.json"
    config.write_text(json.dumps(screening))
    batch = tmp_path / "calls.jsonl"
    batch.write_text("".join(json.dumps(c) + "\n" for c in calls))
    main(["screen", "--batch", str(batch), "--config", str(config)])
    return capsys.readouterr().out


def _burst_day():
    calls = [{"orig": "0612345678", "dest": DEST, "now": NOW + i} for i in range(6)]  # 3 allowed, 3 rejected
    calls += [{"orig": "0162000001", "dest": DEST, "now": NOW}]  # canvassing: tagged
    return calls


def _row(text, rule):
    return next(line.split() for line in text.splitlines() if line.startswith(rule + " "))


def test_a_table_per_rule(tmp_path, capsys):
    out = _screen_records(tmp_path, capsys, {"rules": {"canvass.hours": {"enabled": False},
                                                       "pattern.burst": {"limit": 3}}}, _burst_day())
    path = tmp_path / "decisions.jsonl"
    path.write_text(out + '{"line": 9, "id": null, "error": "not JSON: x"}\n')
    assert main(["report", str(path)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split()[:3] == ["rule", "fired", "share"]
    assert _row(text, "pattern.burst") == ["pattern.burst", "3", "42.9%", "reject:", "3", "0"]
    assert _row(text, "plan.canvassing") == ["plan.canvassing", "1", "14.3%", "tag:", "1", "0"]
    assert "7 screened calls: allow: 3, tag: 1, reject: 3" in text
    assert "1 input line(s) the batch could not read" in text and "operator" not in text


def test_report_only_rules_are_counted_as_reported(tmp_path, capsys):
    out = _screen_records(tmp_path, capsys, {"mode": "report-only", "rules": {
        "canvass.hours": {"enabled": False}, "pattern.burst": {"limit": 3}}}, _burst_day())
    tally = report.read(out.encode().splitlines(keepends=True))
    rows = {r.rule: r for r in tally.screening.rows()}
    assert (rows["pattern.burst"].fired, rows["pattern.burst"].acted, rows["pattern.burst"].reported) == (3, (), 3)
    assert tally.screening.actions == {"allow": 7}
    assert _row(report.table(tally), "pattern.burst")[3:] == ["-", "3"]


def test_after_the_operator_table_when_both_are_there(tmp_path, capsys, verifier, signer):
    screening = _screen_records(tmp_path, capsys, {"rules": {"pattern.burst": {"limit": 1}}},
                                [{"orig": "0612345678", "dest": DEST, "now": NOW}] * 2)
    verification = json.dumps(verifier.verify(signer.sign("0612345678", DEST, iat=NOW), orig="0612345678",
                                              dest=DEST, now=NOW).to_dict())
    tally = report.read((verification + "\n" + screening).encode().splitlines(keepends=True))
    text = report.table(tally)
    assert text.index("operator") < text.index("pattern.burst") and tally.calls == 1
    assert "2 screened calls: allow: 1, reject: 1" in text and not tally.skipped
    page = report.html_page(tally, "x")
    assert "<h2>Screening, per rule</h2>" in page and "<td>pattern.burst</td>" in page


def test_nested_screening_objects_and_hostile_rule_ids():
    nested = {"action": "continue", "code": None, "screening": {"action": "tag", "rules": ["plan.canvassing"],
                                                                 "acted": ["plan.canvassing"], "reported": []}}
    hostile = {"action": "reject", "rules": ["x\x1b[31m\nfake row"], "acted": ["x\x1b[31m\nfake row"]}
    not_one = [{"action": "explode", "rules": []}, {"action": "allow", "rules": "plan.invalid"},
               {"action": "allow", "rules": [3]}]
    lines = [json.dumps(r).encode() + b"\n" for r in [nested, hostile, *not_one]]
    tally = report.read(lines)
    assert tally.screening.calls == 2 and tally.skipped == [3, 4, 5]
    text = report.table(tally)
    assert "\x1b" not in text and "\nfake row" not in text and "x\\x1b[31m\\nfake row" in text
