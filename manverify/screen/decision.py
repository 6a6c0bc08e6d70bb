"""What screening decided for one call: an immutable ScreenDecision, JSON-ready."""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Optional, Tuple

# RFC 8688 §3: 608 Rejected, for calls rejected by an intermediary's analytics; RFC 3261: 603.
PHRASES = {608: "Rejected", 603: "Decline"}


class ScreenDecision(NamedTuple):
    """The screening decision for one call.

    action     "allow" | "tag" | "mask" | "divert" | "reject": what the proxy does
    rules      ids of every rule that fired, acting or reporting, in RULES order
    code       the SIP response code when rejecting (608 by default, 603 configurable), else None
    reason     its reason phrase ("" unless rejecting)
    label      what a tagged call carries for the called party's display ("canvassing", ...)
    values     per fired rule, the values that made it fire (counts, limits, list entry, ...)
    acted      the fired rules that decided the action (empty when nothing acts)
    reported   the fired rules that only report (report_only, or the whole screen in report-only mode)
    divert_to  the URI a diverted call goes to
    degraded   True when the shared counter store was not used for this call (local fallback)
    versions   the data the decision used: plan, MAJNUM file, lists
    """

    action: str
    rules: Tuple[str, ...]
    code: Optional[int]
    reason: str
    label: Optional[str]
    values: Mapping[str, Mapping[str, Any]]
    acted: Tuple[str, ...] = ()
    reported: Tuple[str, ...] = ()
    divert_to: Optional[str] = None
    degraded: bool = False
    versions: Mapping[str, Any] = {}

    @property
    def reject(self) -> bool:
        return self.action == "reject"

    def reason_header(self, protocol: str = "SIP") -> str:
        """RFC 3326 Reason header value naming the deciding rules, e.g.
        'SIP;cause=608;text="pattern.burst"'; "" when the call is not rejected."""
        if self.code is None:
            return ""
        return f'{protocol};cause={self.code};text="{" ".join(self.acted)}"'

    def to_dict(self) -> dict:
        d = self._asdict()
        for key in ("rules", "acted", "reported"):
            d[key] = list(d[key])
        d["values"] = {rule: dict(v) for rule, v in self.values.items()}
        d["versions"] = dict(self.versions)
        return d
