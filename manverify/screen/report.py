"""`manverify report` on screening decisions: one row per rule id.

A screening record is ScreenDecision.to_dict() (what `manverify screen --batch` writes, with its
line and id), or a record holding one under "screening" (manverify.sip's Decision.to_dict(), the
`screening` object of `manverify serve`'s answers). Per rule: how many calls it fired on, its
share of the calls, on how many it decided the action (and which action), and on how many it only
reported (report_only, or the whole screen in report-only mode): the numbers an operator reads
after a week in report-only mode before letting a rule act.
"""
from __future__ import annotations

import html
from collections import Counter
from typing import Any, Dict, List, NamedTuple, Tuple

ACTIONS = ("allow", "tag", "mask", "divert", "reject")  # rules.ACTIONS, without importing the rules


class RuleRow(NamedTuple):
    rule: str
    fired: int
    acted: Tuple[Tuple[str, int], ...]  # (action, calls) where this rule decided it, mildest first
    reported: int

    @property
    def acted_total(self) -> int:
        return sum(n for _, n in self.acted)


class ScreeningTally:
    """Screening decisions counted per rule; add() them, then rows()."""

    def __init__(self):
        self.calls = 0
        self.actions: Counter = Counter()
        self.degraded = 0
        self._fired: Counter = Counter()
        self._acted: Dict[str, Counter] = {}
        self._reported: Counter = Counter()

    def add(self, rec: Any) -> bool:
        """Count one screening decision; False (and nothing counted) when `rec` is not one."""
        if isinstance(rec, dict) and isinstance(rec.get("screening"), dict) and "rules" not in rec:
            rec = rec["screening"]
        if not isinstance(rec, dict) or rec.get("action") not in ACTIONS:
            return False
        rules, acted, reported = (rec.get(k, []) for k in ("rules", "acted", "reported"))
        if not all(isinstance(x, list) and all(isinstance(r, str) for r in x) for x in (rules, acted, reported)):
            return False
        action = rec["action"]
        self.calls += 1
        self.actions[action] += 1
        self.degraded += rec.get("degraded") is True
        for rule in set(rules):
            self._fired[rule] += 1
        for rule in set(acted):
            self._acted.setdefault(rule, Counter())[action] += 1
        for rule in set(reported):
            self._reported[rule] += 1
        return True

    def rows(self) -> List[RuleRow]:
        """One row per rule that fired, most calls first."""
        rows = []
        for rule, n in self._fired.items():
            acted = self._acted.get(rule, Counter())
            rows.append(RuleRow(rule, n, tuple((a, acted[a]) for a in ACTIONS if acted[a]), self._reported[rule]))
        return sorted(rows, key=lambda r: (-r.fired, r.rule))


def _shown(text: str) -> str:
    """A value from the input as `manverify report` shows every such value (control characters
    escaped: a record may hold anything)."""
    from ..report import shown  # that module imports this one

    return shown(text)


def acted_text(row: RuleRow) -> str:
    return ", ".join(f"{a}: {n}" for a, n in row.acted) or "-"


def lines(tally: ScreeningTally) -> List[str]:
    """The plain-text table: one line per rule, then the decisions by action."""
    rows = tally.rows()
    width = max(len("rule"), *(len(_shown(r.rule)) for r in rows)) if rows else len("rule")
    acted_width = max(len("acted (action: calls)"), *(len(acted_text(r)) for r in rows)) if rows else 21
    head = (f"{'rule':{width}s} {'fired':>7s} {'share':>7s}  {'acted (action: calls)':{acted_width}s}  "
            f"{'reported':>8s}")
    out = [head, "-" * len(head)]
    for r in rows:
        share = 100 * r.fired / tally.calls
        out.append(f"{_shown(r.rule):{width}s} {r.fired:7d} {share:6.1f}%  {acted_text(r):{acted_width}s}  "
                   f"{r.reported:8d}")
    out += ["-" * len(head), summary(tally)]
    return out


def summary(tally: ScreeningTally) -> str:
    """The decisions by action, and how many were made on local counters."""
    actions = ", ".join(f"{a}: {tally.actions[a]}" for a in ACTIONS if tally.actions[a])
    text = f"{tally.calls} screened calls: {actions}"
    if tally.degraded:
        text += f"; {tally.degraded} screened on local counters (shared store down or slow)"
    return text


def html_table(tally: ScreeningTally) -> str:
    e = html.escape
    body = ["<h2>Screening, per rule</h2>",
            "<table><thead><tr><th>rule</th><th>fired</th><th>share</th><th>acted (action: calls)</th>"
            "<th>reported</th></tr></thead><tbody>"]
    for r in tally.rows():
        body.append(f"<tr><td>{e(_shown(r.rule))}</td><td class=n>{r.fired}</td>"
                    f"<td class=n>{100 * r.fired / tally.calls:.1f}%</td><td>{e(acted_text(r))}</td>"
                    f"<td class=n>{r.reported}</td></tr>")
    body.append("</tbody></table>")
    body.append(f"<p class=note>{e(summary(tally))}</p>")
    return "\n".join(body)
