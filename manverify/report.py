"""The per-operator report of `manverify report`.

It reads decision records, one JSON object per call with the fields of `Result.to_dict()`: what
`manverify verify --batch` and `manverify demo --jsonl` write (batch.decision_record), or what an
integrator who logs `r.to_dict()` per call writes. It groups the calls by originating operator,
worst first, so that in monitoring mode one sees which partner to call.

Who originated a call: the SPC of the signer's certificate (its TNAuthList), which a Result carries
once the certificate was obtained and accepted. A call that failed earlier (a stale PASSporT, a
number that differs) or whose certificate was refused (expired, untrusted, not found) has no SPC; it
counts for the operator whose SPC other calls of the same input showed behind the same x5u URL, and
failing that under `x5u:<URL>` (the partner serving that certificate). A call with no readable
PASSporT at all (no Identity header, a token that cannot be decoded) names no one: it counts under
`unknown`.

Screening decisions (manverify.screen: `manverify screen --batch`'s records) are counted per rule
instead (manverify.screen.report), in a table of their own.
"""
from __future__ import annotations

import html
import io
import json
from collections import Counter
from typing import Any, Dict, Iterable, List, NamedTuple, Tuple

from .errors import UsageError
from .result import REASONS
from .screen import report as screen_report

UNKNOWN = "unknown"
X5U = "x5u:"
CHART_ROWS = 30  # operators drawn in the HTML chart (the worst); the table lists them all


def shown(text: str) -> str:
    """`text` fit for a terminal or a page: every character that is not printable (C0 and C1
    controls such as ESC and CSI, NUL, bidi overrides, line breaks) as its escape. An operator's
    name comes from the input file, which anyone may have written."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class Row(NamedTuple):
    """One operator's calls."""

    operator: str
    calls: int
    passed: int
    failures: Tuple[Tuple[int, int], ...]  # (SIP code, calls), most frequent first
    attest: Tuple[Tuple[str, int], ...]  # (attestation, calls) among the calls that passed, A first

    @property
    def pass_rate(self) -> float:
        return self.passed / self.calls if self.calls else 0.0


class _Group:
    __slots__ = ("calls", "passed", "failures", "attest")

    def __init__(self):
        self.calls = self.passed = 0
        self.failures: Counter = Counter()
        self.attest: Counter = Counter()

    def merge(self, other: "_Group") -> None:
        self.calls += other.calls
        self.passed += other.passed
        self.failures.update(other.failures)
        self.attest.update(other.attest)

    def row(self, operator: str) -> Row:
        failures = tuple(sorted(self.failures.items(), key=lambda x: (-x[1], x[0])))
        return Row(operator, self.calls, self.passed, failures, tuple(sorted(self.attest.items())))


class Tally:
    """Decision records counted per operator; add() them, then rows() and total()."""

    def __init__(self):
        self._groups: Dict[str, _Group] = {}  # by SPC, x5u:<URL> or unknown
        self._spcs_at: Dict[str, set] = {}  # x5u URL -> SPCs seen behind it
        self.calls = 0
        self.unread: List[int] = []  # lines the batch could not read (its error records)
        self.skipped: List[int] = []  # input lines that are no decision record
        self.screening = screen_report.ScreeningTally()  # screening decisions, per rule

    def add_line(self, lineno: int, raw: bytes) -> None:
        if not raw.strip():
            return
        try:
            rec = json.loads(raw)
        except ValueError:
            self.skipped.append(lineno)
            return
        if isinstance(rec, dict) and "error" in rec and "ok" not in rec:
            self.unread.append(rec.get("line") if isinstance(rec.get("line"), int) else lineno)
        elif not self.add(rec) and not self.screening.add(rec):
            self.skipped.append(lineno)

    def add(self, rec: Any) -> bool:
        """Count one decision record; False (and nothing counted) when it is not one."""
        if not isinstance(rec, dict):
            return False
        ok, code, spc, x5u, attest = (rec.get(k) for k in ("ok", "sip_code", "spc", "x5u", "attest"))
        if (type(ok) is not bool or not (ok or type(code) is int) or not _str_or_none(spc, x5u, attest)):
            return False
        if spc:
            key = spc
            if x5u:
                self._spcs_at.setdefault(x5u, set()).add(spc)
        else:
            key = X5U + x5u if x5u else UNKNOWN
        g = self._groups.get(key)
        if g is None:
            g = self._groups[key] = _Group()
        g.calls += 1
        self.calls += 1
        if ok:
            g.passed += 1
            if attest:
                g.attest[attest] += 1
        else:
            g.failures[code] += 1
        return True

    def _resolved(self) -> Dict[str, _Group]:
        # a call with no SPC goes to the one operator seen behind its x5u URL, if there is one
        out: Dict[str, _Group] = {}
        for key, g in self._groups.items():
            spcs = self._spcs_at.get(key[len(X5U):], ()) if key.startswith(X5U) else ()
            if len(spcs) == 1:
                key = next(iter(spcs))
            out.setdefault(key, _Group()).merge(g)
        return out

    def rows(self) -> List[Row]:
        """One row per operator, worst first: lowest pass rate, then most calls."""
        rows = [g.row(k) for k, g in self._resolved().items()]
        return sorted(rows, key=lambda r: (r.pass_rate, -r.calls, r.operator))

    def total(self) -> Row:
        everything = _Group()
        for g in self._groups.values():
            everything.merge(g)
        return everything.row("all")


def _str_or_none(*values) -> bool:
    return all(v is None or isinstance(v, str) for v in values)


def read(lines: Iterable[bytes]) -> Tally:
    tally = Tally()
    for lineno, raw in enumerate(lines, 1):
        tally.add_line(lineno, raw)
    return tally


# -- text ---------------------------------------------------------------------------------------

def failures_text(row: Row) -> str:
    return ", ".join(f"{code}: {n}" for code, n in row.failures) or "-"


def attest_text(row: Row) -> str:
    n = sum(k for _, k in row.attest)
    return " ".join(f"{a} {100 * k / n:.0f}%" for a, k in row.attest) if n else "-"


def table(tally: Tally) -> str:
    """The plain-text report: one line per operator, worst first, then the total; the per-rule
    table of screening decisions after it (alone when the input holds only those)."""
    if tally.screening.calls and not tally.calls:
        return "\n".join(screen_report.lines(tally.screening) + _notes(tally)) + "\n"
    rows = [r._replace(operator=shown(r.operator)) for r in tally.rows() + [tally.total()]]
    width = max(len("operator"), *(len(r.operator) for r in rows))
    fail_width = max(len("failures by code"), *(len(failures_text(r)) for r in rows))
    head = (f"{'operator':{width}s} {'calls':>7s} {'passed':>7s} {'pass rate':>9s}  "
            f"{'failures by code':{fail_width}s}  attest mix (passed calls)")
    lines = [head, "-" * len(head)]
    for i, r in enumerate(rows):
        if i == len(rows) - 1:
            lines.append("-" * len(head))
        lines.append(f"{r.operator:{width}s} {r.calls:7d} {r.passed:7d} {100 * r.pass_rate:8.1f}%  "
                     f"{failures_text(r):{fail_width}s}  {attest_text(r)}")
    if tally.screening.calls:
        lines += [""] + screen_report.lines(tally.screening)
    lines.extend(_notes(tally))
    return "\n".join(lines) + "\n"


def _notes(tally: Tally) -> List[str]:
    notes = []
    if tally.unread:
        notes.append(f"{len(tally.unread)} input line(s) the batch could not read, not counted above "
                     f"(first: line {tally.unread[0]})")
    if tally.skipped:
        notes.append(f"{len(tally.skipped)} line(s) of this file are not decision records, skipped "
                     f"(first: line {tally.skipped[0]})")
    return notes


# -- HTML -----------------------------------------------------------------------------------------

def require_plotting() -> None:
    """Raise UsageError naming the extra to install when the plotting library is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("--html draws its chart with matplotlib, which is not installed: "
                         "pip install 'manverify[report]'") from None


def chart_svg(rows: List[Row]) -> str:
    """Pass rate and failures by code per operator, one bar each, as an inline <svg> element."""
    require_plotting()
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    rows = rows[:CHART_ROWS]
    labels = [_short(shown(r.operator)).replace("$", r"\$") for r in rows]  # "$" would start mathtext
    ys = range(len(rows))
    codes = sorted({code for r in rows for code, _ in r.failures})
    # text stays text (searchable, the page's font); ids are stable from one run to the next
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "manverify", "font.size": 9}):
        fig = Figure(figsize=(10, 1.2 + 0.32 * len(rows)), layout="constrained")
        rate_ax, fail_ax = fig.subplots(1, 2, sharey=True, width_ratios=(1, 1.4))
        rate_ax.barh(ys, [100 * r.pass_rate for r in rows], color="#3a7d44", height=0.6)
        for y, r in zip(ys, rows):
            rate_ax.text(min(100 * r.pass_rate + 1, 88), y, f"{100 * r.pass_rate:.1f}%", va="center")
        rate_ax.set_xlim(0, 100)
        rate_ax.set_xlabel("pass rate (%)")
        rate_ax.set_yticks(list(ys), labels)
        rate_ax.set_ylim(len(rows) - 0.5, -0.5)  # worst at the top, as in the table; no empty band
        left = [0] * len(rows)
        for code in codes:
            counts = [dict(r.failures).get(code, 0) for r in rows]
            fail_ax.barh(ys, counts, left=left, height=0.6, label=f"{code} {REASONS.get(code, '')}")
            left = [a + b for a, b in zip(left, counts)]
        fail_ax.set_xlabel("failed calls, by SIP code")
        if codes:
            fail_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)  # off the bars
        for ax in (rate_ax, fail_ax):
            ax.grid(axis="x", color="#dddddd")
            ax.set_axisbelow(True)
            ax.spines[["top", "right"]].set_visible(False)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None,
                                                 "Type": None})
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]  # inline in HTML: no XML declaration or DOCTYPE


def _short(label: str, keep: int = 44) -> str:
    return label if len(label) <= keep else label[:18] + "…" + label[-(keep - 19):]


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #ddd; text-align: left; }
th { white-space: nowrap; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: bold; border-top: 2px solid #888; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
.note { color: #555; }
"""


def html_page(tally: Tally, source: str) -> str:
    """A self-contained page (no external reference): the chart inline, then the table."""
    rows = tally.rows()
    def e(text: str) -> str:
        return html.escape(shown(text))

    body = [f"<h1>Calls per originating operator</h1>",
            f"<p class=note>{tally.calls} calls from {e(source)}, worst operator first.</p>"]
    if rows:
        caption = "Pass rate and failed calls per operator"
        if len(rows) > CHART_ROWS:
            caption += f" (the {CHART_ROWS} worst of {len(rows)})"
        body.append(f"<figure>{chart_svg(rows)}<figcaption>{caption}</figcaption></figure>")
    body.append("<table><thead><tr><th>operator</th><th>calls</th><th>passed</th><th>pass rate</th>"
                "<th>failures by code</th><th>attest mix (passed calls)</th></tr></thead><tbody>")
    for r, cls in [(r, "") for r in rows] + [(tally.total(), ' class="total"')]:
        body.append(f"<tr{cls}><td>{e(r.operator)}</td><td class=n>{r.calls}</td><td class=n>{r.passed}</td>"
                    f"<td class=n>{100 * r.pass_rate:.1f}%</td><td>{e(failures_text(r))}</td>"
                    f"<td>{e(attest_text(r))}</td></tr>")
    body.append("</tbody></table>")
    if tally.screening.calls:
        body.append(screen_report.html_table(tally.screening))
    body.append("<p class=note>An operator is the SPC of the signer's certificate. A call without one "
                "(it failed before its certificate was accepted) counts for the SPC seen behind the same "
                "x5u URL, else under <code>x5u:URL</code>; a call with no readable PASSporT counts under "
                "<code>unknown</code>.</p>")
    body.extend(f"<p class=note>{e(n)}</p>" for n in _notes(tally))
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            "<title>manverify: calls per operator</title>"
            f"<style>{_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
