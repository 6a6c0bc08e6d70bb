"""`manverify report`: per-operator counts from decision records, as text and as a self-contained page."""
import html.parser
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from manverify import pki, report
from manverify.cli import main
from manverify.signer import Signer


@pytest.fixture(scope="module")
def traffic(lab, tmp_path_factory):
    """A batch run over four partners: 1001 all good, 1002 with a slow clock on a third of its calls,
    2002 whose certificate expired, and calls without an Identity header; the batch's output file."""
    d = tmp_path_factory.mktemp("traffic")
    now = 1_800_000_000
    ops = {"1001": lab.signer, "1002": pki.make_signer(lab.intermediate, spc="1002", now=now),
           "2002": pki.make_signer(lab.intermediate, spc="2002", not_before=now - 400 * 86400, days=365)}
    x5u = {spc: f"https://certs.example.fr/{spc}.pem" for spc in ops}
    (d / "root.pem").write_bytes(lab.root.pem)
    cert_args = []
    for spc, cert in ops.items():
        (d / f"{spc}.pem").write_bytes(cert.pem + lab.intermediate.pem)
        cert_args += ["--cert", f"{x5u[spc]}={d / f'{spc}.pem'}"]
    signers = {spc: Signer(cert.key_pem, x5u[spc], clock=lambda: now) for spc, cert in ops.items()}
    early = Signer(ops["1002"].key_pem, x5u["1002"], clock=lambda: now - 3600)
    calls = []
    for i in range(60):
        calls.append({"id": f"a{i}", "identity": signers["1001"].sign("0612345678", "0198765432",
                                                                    attest="AB"[i % 2], iat=now),
                      "orig": "0612345678", "dest": "0198765432", "now": now})
    for i in range(30):  # 10 of 30 signed an hour early: 403, before the certificate is looked at
        calls.append({"id": f"b{i}", "identity": (early if i % 3 == 0 else signers["1002"]).sign(
                          "0612345678", "0198765432", attest="C"),
                      "orig": "0612345678", "dest": "0198765432", "now": now})
    for i in range(8):
        calls.append({"id": f"c{i}", "identity": signers["2002"].sign("0612345678", "0198765432", iat=now),
                      "orig": "0612345678", "dest": "0198765432", "now": now})
    for i in range(5):
        calls.append({"id": f"d{i}", "orig": "0612345678", "dest": "0198765432", "now": now})
    lines = [json.dumps(c) for c in calls]
    lines.insert(40, '{"id": "cut", "orig": "06')  # a bad line: an error record in the output
    (d / "calls.jsonl").write_text("\n".join(lines) + "\n")
    out = d / "results.jsonl"
    p = subprocess.run(
        [sys.executable, "-m", "manverify", "verify", "--trust", str(d / "root.pem"), *cert_args,
         "--batch", str(d / "calls.jsonl")], capture_output=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=str(Path(report.__file__).parents[1])))
    assert p.returncode == 1, p.stderr
    out.write_bytes(p.stdout)
    return out, x5u


def test_rows_per_operator_worst_first(traffic):
    out, x5u = traffic
    with open(out, "rb") as f:
        tally = report.read(f)
    rows = tally.rows()
    assert [r.operator for r in rows] == [report.X5U + x5u["2002"], report.UNKNOWN, "1002", "1001"]
    by = {r.operator: r for r in rows}
    assert by["1001"] == report.Row("1001", 60, 60, (), (("A", 30), ("B", 30)))
    # the stale calls carry no SPC: they count for 1002 through their x5u URL
    assert by["1002"] == report.Row("1002", 30, 20, ((403, 10),), (("C", 20),))
    assert by[report.X5U + x5u["2002"]].failures == ((437, 8),)
    assert by[report.UNKNOWN].failures == ((428, 5),)
    assert tally.total() == report.Row("all", 103, 80, ((403, 10), (437, 8), (428, 5)),
                                       (("A", 30), ("B", 30), ("C", 20)))
    assert tally.unread == [41] and tally.skipped == []


def test_report_command_prints_the_table(traffic, capsys):
    out, x5u = traffic
    assert main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].split() == ["operator", "calls", "passed", "pass", "rate", "failures", "by", "code",
                                "attest", "mix", "(passed", "calls)"]
    body = [x.split() for x in lines[2:6]]
    assert body[0] == ["x5u:" + x5u["2002"], "8", "0", "0.0%", "437:", "8", "-"]  # more calls lost
    assert body[1] == ["unknown", "5", "0", "0.0%", "428:", "5", "-"]
    assert body[2] == ["1002", "30", "20", "66.7%", "403:", "10", "C", "100%"]
    assert body[3] == ["1001", "60", "60", "100.0%", "-", "A", "50%", "B", "50%"]
    assert lines[7].split()[:4] == ["all", "103", "80", "77.7%"]
    assert "1 input line(s) the batch could not read, not counted above (first: line 41)" in text


def test_a_line_that_is_no_record_is_skipped_and_said(tmp_path, capsys):
    f = tmp_path / "log.jsonl"
    f.write_text('{"ok": true, "sip_code": null, "spc": "1001", "attest": "A"}\n'
                 'manverify: 4711@host reject 438\n'
                 '{"ok": false, "sip_code": "438"}\n'
                 '{"ok": false, "sip_code": 438, "spc": "1001"}\n')
    assert main(["report", str(f)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[2].split() == ["1001", "2", "1", "50.0%", "438:", "1", "A", "100%"]
    assert "2 line(s) of this file are not decision records, skipped (first: line 2)" in text


def test_an_x5u_seen_with_two_spcs_is_not_guessed():
    tally = report.Tally()
    for spc in ("1001", "1002"):
        tally.add({"ok": True, "sip_code": None, "spc": spc, "x5u": "https://a/x.pem", "attest": "A"})
    tally.add({"ok": False, "sip_code": 403, "spc": None, "x5u": "https://a/x.pem"})
    assert [r.operator for r in tally.rows()] == ["x5u:https://a/x.pem", "1001", "1002"]


class _Page(html.parser.HTMLParser):
    """What a structural check needs: the table's rows, every reference, the inline chart."""

    def __init__(self):
        super().__init__()
        self.rows, self.refs, self.tags, self._row = [], [], [], None
        self.svg_text = []
        self._in_svg = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_svg += tag == "svg"
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "poster", "data", "srcset"):
                self.refs.append(value)
            self.refs.extend(re.findall(r"url\(\s*['\"]?([^)'\"]*)", value or ""))  # style, clip-path
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._row.append("")

    def handle_endtag(self, tag):
        self._in_svg -= tag == "svg"
        if tag == "tr":
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._row:
            self._row[-1] += data
        if self._in_svg:
            self.svg_text.append(data)


def test_html_page_is_self_contained(traffic, tmp_path, capsys):
    out, x5u = traffic
    page_file = tmp_path / "report.html"
    assert main(["report", str(out), "--html", str(page_file)]) == 0
    capsys.readouterr()
    text = page_file.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    assert page.rows[0][0] == "operator"
    assert [r[0] for r in page.rows[1:]] == ["x5u:" + x5u["2002"], "unknown", "1002", "1001", "all"]
    assert page.rows[3] == ["1002", "30", "20", "66.7%", "403: 10", "C 100%"]
    # the chart: one inline SVG with a bar per operator and the codes in its legend
    assert page.tags.count("svg") == 1 and "img" not in page.tags
    assert page.tags.count("path") + page.tags.count("rect") > 10
    labels = "".join(page.svg_text)
    for fragment in ("1001", "1002", "unknown", "403 Stale Date", "437 Unsupported Credential", "pass rate"):
        assert fragment in labels
    # nothing fetched from anywhere: every reference points inside the page
    assert page.refs and all(ref.startswith(("#", "data:")) for ref in page.refs)
    for tag in ("script", "link", "iframe", "object", "embed", "img"):
        assert tag not in page.tags
    assert "@import" not in text and not re.search(r"url\(\s*['\"]?(?!#|data:)", text)


def test_html_escapes_what_the_calls_carry(tmp_path):
    """An x5u URL comes from the call: it is text in the table and in the chart, never markup."""
    tally = report.Tally()
    evil = "https://x/<script>alert(1)</script>$\\frac{$.pem"  # unescaped, "$" starts mathtext
    tally.add({"ok": False, "sip_code": 436, "spc": None, "x5u": evil})
    text = report.html_page(tally, "<calls>")
    page = _Page()
    page.feed(text)
    assert "script" not in page.tags
    assert page.rows[1][0] == "x5u:" + evil
    assert "".join(page.svg_text).count("$\\frac{$.pem") == 1  # drawn as it is
    assert "&lt;calls&gt;" in text


def test_html_without_matplotlib_names_the_extra(traffic, tmp_path, capsys, monkeypatch):
    out, _ = traffic
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    page_file = tmp_path / "report.html"
    assert main(["report", str(out), "--html", str(page_file)]) == 2
    assert "pip install 'manverify[report]'" in capsys.readouterr().err
    assert not page_file.exists()


def test_report_of_demo_traffic(tmp_path, capsys):
    """`manverify demo --jsonl` writes several operators' traffic; the report tells them apart."""
    records = tmp_path / "demo.jsonl"
    assert main(["demo", "--calls", "600", "--jsonl", str(records)]) == 0
    capsys.readouterr()
    assert main(["report", str(records)]) == 0
    text = capsys.readouterr().out
    operators = [line.split()[0] for line in text.splitlines()[2:] if not line.startswith("-")]
    assert {"1001", "1002", "1003", "unknown", "all"} <= set(operators)
    assert any(op.startswith("x5u:") and op.endswith("/op1004.pem") for op in operators)  # expired
    assert any(op.startswith("x5u:") and op.endswith("/rogue.pem") for op in operators)  # untrusted
    assert operators[-1] == "all"
    assert operators.index("1003") < operators.index("1001")  # the sloppy partner comes first
    with open(records, "rb") as f:
        first = json.loads(f.readline())
    assert first["id"] == 1 and "kind" in first and "verstat" in first


def test_control_characters_are_escaped_in_text_and_html(tmp_path, capsys):
    """What a record carries (written by anyone) never reaches a terminal or a page as control
    characters: ESC/CSI sequences, NUL, bidi overrides and line breaks are shown escaped."""
    hostile = "https://x/\x1b[2J\x1b]0;owned\x07\x00\x9b31m\u202e\r\nfake.pem"
    records = tmp_path / "calls.jsonl"
    records.write_text(json.dumps({"ok": False, "sip_code": 436, "spc": None, "x5u": hostile}) + "\n"
                       + json.dumps({"ok": True, "sip_code": None, "spc": "10\x1b[31m01", "attest": "A"}) + "\n")
    assert main(["report", str(records)]) == 0
    out = capsys.readouterr().out
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", out) and out.count("\n") == len(out.splitlines())
    assert "x5u:https://x/\\x1b[2J\\x1b]0;owned\\x07\\x00\\x9b31m\\u202e\\r\\nfake.pem" in out
    assert "10\\x1b[31m01" in out
    page = report.html_page(report.read(records.read_bytes().splitlines()), "calls\x1b.jsonl")
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202e]", page)
    assert "x5u:https://x/\\x1b[2J" in page and "calls\\x1b.jsonl" in page
