"""`manverify screen --batch`: one decision per line, ids echoed, bad lines as error records, the
exit contract of `verify --batch`, counters in input order across chunks, stdin."""
import json
import subprocess
import sys

import pytest

from manverify.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from manverify import batch as verify_batch

from .conftest import NOW

DEST = "0198765432"
BLOCKED = "0612000999"


@pytest.fixture
def config(tmp_path):
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "block.txt").write_text(BLOCKED + "\n")
    path = tmp_path / "screening.json"
    path.write_text(json.dumps({"lists": {"block": ["lists/block.txt"]},
                                "rules": {"canvass.hours": {"enabled": False}, "pattern.burst": {"limit": 2}}}))
    return path


def _run(tmp_path, config, lines, capsys, *extra):
    calls = tmp_path / "calls.jsonl"
    calls.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    status = main(["screen", "--batch", str(calls), "--config", str(config), *extra])
    out, err = capsys.readouterr()
    return status, [json.loads(x) for x in out.splitlines()], err


def test_one_decision_per_line_with_ids(tmp_path, config, capsys, monkeypatch):
    monkeypatch.chdir("/")  # the list is read next to the configuration, not here
    lines = [{"id": "a", "orig": "0612345678", "dest": DEST, "now": NOW},
             {"id": None, "orig": BLOCKED, "dest": DEST, "now": NOW},
             {"orig": "0162000001", "dest": DEST, "now": NOW, "custom": [1, 2]}]
    status, records, err = _run(tmp_path, config, lines, capsys)
    assert status == EXIT_FAILED  # not every call was allowed
    assert [(r["line"], r.get("id", "-"), r["action"]) for r in records] == [
        (1, "a", "allow"), (2, None, "reject"), (3, "-", "tag")]
    assert records[1]["rules"] == ["list.block"] and records[1]["code"] == 608
    assert records[2]["label"] == "canvassing" and "versions" in records[2]
    assert err.startswith("3 calls, allow: 1, tag: 1, reject: 1;")


def test_every_call_allowed_exits_0(tmp_path, config, capsys):
    status, records, err = _run(tmp_path, config, [{"orig": "0612345678", "dest": DEST}], capsys)
    assert status == EXIT_OK and records[0]["action"] == "allow" and "line" not in err


@pytest.mark.parametrize("line, error", [
    ("{not json", "not JSON"),
    ('"a string"', "not a JSON object"),
    ('{"dest": "0198765432"}', "missing key 'orig'"),
    ('{"orig": 612345678, "dest": "0198765432"}', "'orig' must be a string"),
    ('{"orig": "0612345678", "dest": "0198765432", "now": "today"}', "'now' must be epoch seconds"),
    ('{"orig": "0612345678", "dest": "0198765432", "now": NaN}', "not JSON"),
    ('{"orig": "0612345678", "dest": "0198765432", "entry": "moon"}', "'entry'"),
    ('{"orig": "0612345678", "dest": "0198765432", "partner": 3}', "'partner'"),
    ('{"orig": "0612345678", "dest": "0198765432", "verstat": "yes"}', "verstat"),
    ('{"orig": "0612345678", "dest": "0198765432", "verstat": "TN-Validation-Passed", "attest": "Z"}', "attest"),
])
def test_each_bad_line_is_one_error_record(tmp_path, config, capsys, line, error):
    lines = [{"id": 1, "orig": "0612345678", "dest": DEST}, line, {"id": 3, "orig": "0612345679", "dest": DEST}]
    status, records, err = _run(tmp_path, config, lines, capsys)
    assert status == EXIT_FAILED and len(records) == 3
    assert records[1]["line"] == 2 and error in records[1]["error"], records[1]
    assert set(records[1]) == {"line", "id", "error"}
    assert [r["action"] for r in (records[0], records[2])] == ["allow", "allow"]
    assert "1 bad line (first: line 2)" in err


def test_garbage_numbers_are_decisions_not_errors(tmp_path, config, capsys):
    status, records, _ = _run(tmp_path, config, [{"orig": "\x00\ufffd", "dest": ""}, {"orig": "+", "dest": "9" * 99}],
                              capsys)
    assert [set(r) >= {"action", "rules"} for r in records] == [True, True]


def test_counts_follow_the_input_order_across_chunks(tmp_path, config, capsys, monkeypatch):
    monkeypatch.setattr(verify_batch, "CHUNK", 2)  # the chunking is the verify batch's, shared
    lines = [{"id": i, "orig": "0612345678", "dest": DEST, "now": NOW + i} for i in range(5)]
    _, records, _ = _run(tmp_path, config, lines, capsys)
    assert [r["action"] for r in records] == ["allow", "allow", "reject", "reject", "reject"]
    assert [r["values"]["pattern.burst"]["count"] for r in records[2:]] == [3, 4, 5]


def test_verstat_feeds_the_international_rules(tmp_path, config, capsys):
    lines = [{"orig": "+33698000001", "dest": DEST, "entry": "international", "verstat": "TN-Validation-Failed"},
             {"orig": "+33698000002", "dest": DEST, "entry": "international", "verstat": "TN-Validation-Passed",
              "attest": "A"}]
    _, records, _ = _run(tmp_path, config, lines, capsys)
    assert "intl.fr-mobile" in records[0]["rules"] and "intl.fr-mobile" not in records[1]["rules"]


def test_a_whole_configuration_document_is_read_for_its_screening_key(tmp_path, config, capsys):
    whole = tmp_path / "kamailio.json"
    whole.write_text(json.dumps({"trust_anchors": ["x"], "screening": json.loads(config.read_text())}))
    status, records, _ = _run(tmp_path, whole, [{"orig": BLOCKED, "dest": DEST}], capsys)
    assert records[0]["rules"] == ["list.block"]


@pytest.mark.parametrize("content, message", [
    (None, "cannot read"),
    ("[1, 2]", "JSON object"),
    ('{"rules": {"no.such.rule": {}}}', "no.such.rule"),
    ('{"screening": null}', "null"),
])
def test_configuration_mistakes_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "screening.json"
    if content is not None:
        path.write_text(content)
    calls = tmp_path / "calls.jsonl"
    calls.write_text('{"orig": "0612345678", "dest": "0198765432"}\n')
    assert main(["screen", "--batch", str(calls), "--config", str(path)]) == EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == "" and message in err


def test_stdin_and_a_missing_batch_file(tmp_path, config):
    p = subprocess.run([sys.executable, "-m", "manverify", "screen", "--batch", "-", "--config", str(config),
                        "--now", str(NOW)], input=f'{{"orig": "{BLOCKED}", "dest": "{DEST}", "id": 7}}\n',
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == EXIT_FAILED, p.stderr
    assert json.loads(p.stdout)["id"] == 7 and json.loads(p.stdout)["action"] == "reject"
    p = subprocess.run([sys.executable, "-m", "manverify", "screen", "--batch", str(tmp_path / "none.jsonl"),
                        "--config", str(config)], capture_output=True, text=True, timeout=60)
    assert p.returncode == EXIT_USAGE and "none.jsonl" in p.stderr and p.stdout == ""
