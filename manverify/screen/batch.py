"""`manverify screen --batch`: a JSONL file of calls in, one screening decision per input line out,
in order, with the error and exit contract of `manverify verify --batch` (manverify.batch).

An input line is a JSON object: "orig" and "dest" (numbers in any common form), and optionally
"now" (epoch seconds), "entry" ("national" | "international"), "partner", "verstat" and "attest"
(what the call's verification said, for the intl.* rules) and "id" (echoed). Other keys are
ignored, so a call log may carry its own. The output record of a call is its line number, its id
when it had one, and ScreenDecision.to_dict(); a line that is not a call becomes
{"line": n, "id": …, "error": "…"} and the run goes on. Calls are screened a chunk at a time with
Screen.check_many() (one pipelined round trip to a shared store per chunk), in input order, since
the counters depend on it. The closing line on stderr gives calls per action, bad lines and the
rate; the exit status is 0 when every call was allowed and every line read, 1 otherwise.
"""
from __future__ import annotations

from collections import Counter
from typing import IO, Any, Iterable, List, Optional

from ..batch import Batch, BadLine, _finite, decision_record
from ..policy import ENTRIES
from ..result import FAILED, NOT_VALIDATED, PASSED, Result

# What an SBC's verstat says of the call, as the Result the intl.* rules read: (ok, SIP code).
VERSTATS = {PASSED: (True, None), FAILED: (False, 438), NOT_VALIDATED: (False, 428)}


def verification(verstat: Any, attest: Any) -> Optional[Result]:
    """The Result a call's reported verstat (and attestation) stands for; None when it reported
    none. ValueError with a reason for values that are not those."""
    if attest is not None and attest not in ("A", "B", "C"):
        raise ValueError(f"attest must be A, B or C, not {attest!r}")
    if verstat is None:
        if attest is not None:
            raise ValueError("attest needs the verstat it came with")
        return None
    if verstat not in VERSTATS:
        raise ValueError(f"verstat must be one of {', '.join(VERSTATS)}, not {verstat!r}")
    ok, code = VERSTATS[verstat]
    return Result(ok=ok, sip_code=code, detail=f"verified upstream: {verstat}", attest=attest if ok else None)


def parse_call(obj: Any, default_now: Optional[float]) -> dict:
    """check_many()'s mapping for one decoded line; raises BadLine with a reason a person can act on."""
    if not isinstance(obj, dict):
        raise BadLine("not a JSON object")
    for key in ("orig", "dest"):
        if key not in obj:
            raise BadLine(f"missing key {key!r}")
        if not isinstance(obj[key], str):
            raise BadLine(f"{key!r} must be a string")
    now = obj.get("now")
    if now is None:
        now = default_now
    elif isinstance(now, bool) or not isinstance(now, (int, float)) or not _finite(now):
        raise BadLine("'now' must be epoch seconds (a finite number)")
    entry = obj.get("entry", "national")
    if entry not in ENTRIES:
        raise BadLine(f"'entry' must be national or international, not {entry!r}"[:200])
    partner = obj.get("partner")
    if partner is not None and not isinstance(partner, str):
        raise BadLine("'partner' must be a string")
    try:
        result = verification(obj.get("verstat"), obj.get("attest"))
    except ValueError as e:
        raise BadLine(str(e)[:200]) from None
    return {"orig": obj["orig"], "dest": obj["dest"], "now": now, "entry": entry, "partner": partner,
            "result": result}


class Run(Batch):
    """`screen --batch`: chunks screened in order by check_many(); ok when every call was allowed."""

    verb = "screened"
    failure = "screening failed on this call"

    def __init__(self, screen, out: IO[str], progress: Optional[IO[str]] = None,
                 default_now: Optional[float] = None):
        super().__init__(out, progress, default_now)
        self.screen = screen
        self.actions: Counter = Counter()

    def parse(self, obj: Any) -> dict:
        return parse_call(obj, self.default_now)

    def answer(self, calls: List[dict]) -> list:
        return self.screen.check_many(calls)

    def record(self, d: Any, line: int, ident: Any) -> dict:
        self.actions[d.action] += 1
        return decision_record(d, line=line, id=ident)

    def tally(self) -> str:
        from .rules import ACTIONS

        return ", ".join(f"{a}: {self.actions[a]}" for a in ACTIONS if self.actions[a])

    @property
    def ok(self) -> bool:
        return not self.bad and set(self.actions) <= {"allow"}


def run(screen, lines: Iterable[bytes], out: IO[str], err: IO[str], progress: bool,
        default_now: Optional[float] = None) -> bool:
    """Screen every call of `lines`, write one record per line to `out` and the summary to `err`;
    True when every call was allowed and every line was a call."""
    return Run(screen, out, err if progress else None, default_now).drive(lines, err)


def load(path: str):
    """The Screen of a JSON file: either the screening mapping itself, or a whole manverify
    configuration (Kamailio's, serve's) holding it under "screening"; files named in it are
    read relative to the JSON file's folder. ConfigError for a file that is neither."""
    import os

    from .. import config as _config
    from ..errors import ConfigError
    from .engine import Screen

    data = _config.load(path)
    mapping = data.get("screening", data)
    if mapping is None:
        raise ConfigError(f"{path}: screening is null; nothing to screen with")
    # a batch screens a finished file: no reload watch, nothing in the background
    return Screen.from_dict(mapping, os.path.dirname(os.path.abspath(path)), reload=False)
