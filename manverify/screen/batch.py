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

import json
import math
import time
from collections import Counter
from typing import IO, Any, Iterable, List, Optional, Tuple, Union

from ..batch import NO_ID, BadLine, decode_line
from ..result import FAILED, NOT_VALIDATED, PASSED, Result

CHUNK = 1024  # calls per check_many(): one round trip to the store each
_PROGRESS_EVERY = 0.2
ENTRIES = ("national", "international")
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


def _finite(x: Union[int, float]) -> bool:
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


class Run:
    """One batch run: screens chunks in order, writes records, counts actions and bad lines."""

    def __init__(self, screen, out: IO[str], progress: Optional[IO[str]] = None,
                 default_now: Optional[float] = None):
        self.screen = screen
        self.out = out
        self.progress = progress
        self.default_now = default_now
        self.actions: Counter = Counter()
        self.calls = 0
        self.bad: List[int] = []
        self.start = time.perf_counter()
        self._shown = -math.inf

    def feed(self, lines: Iterable[bytes]) -> None:
        pending: List[Tuple[int, Any, Union[dict, str]]] = []
        for lineno, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            ident = NO_ID
            try:
                obj = decode_line(raw)
                if isinstance(obj, dict):
                    ident = obj.get("id", NO_ID)
                entry = parse_call(obj, self.default_now)
            except BadLine as e:
                entry = str(e)
            pending.append((lineno, ident, entry))
            if len(pending) == CHUNK:
                self._flush(pending)
        self._flush(pending)

    def _flush(self, pending: list) -> None:
        calls = [entry for _, _, entry in pending if type(entry) is dict]
        decisions = iter(self.screen.check_many(calls) if calls else ())
        records = []
        for lineno, ident, entry in pending:
            if type(entry) is dict:
                d = next(decisions)
                self.calls += 1
                self.actions[d.action] += 1
                rec = {"line": lineno}
                if ident is not NO_ID:
                    rec["id"] = ident
                rec.update(d.to_dict())
                records.append(rec)
            else:
                self.bad.append(lineno)
                records.append({"line": lineno, "id": None if ident is NO_ID else ident, "error": entry})
        pending.clear()
        if records:
            self.out.write("".join(json.dumps(rec, separators=(",", ":")) + "\n" for rec in records))
            self.out.flush()
        self._show_progress()

    def _show_progress(self) -> None:
        if self.progress is None:
            return
        t = time.perf_counter()
        if t - self._shown >= _PROGRESS_EVERY:
            self._shown = t
            bad = f", {len(self.bad)} bad line{'s' if len(self.bad) != 1 else ''}" if self.bad else ""
            self.progress.write(f"\r{self.calls} calls screened{bad}, {self._rate(t):.0f} calls/s")
            self.progress.flush()

    def _rate(self, t: float) -> float:
        return self.calls / (t - self.start) if t > self.start else 0.0

    def summary(self) -> str:
        from .rules import ACTIONS

        actions = ", ".join(f"{a}: {self.actions[a]}" for a in ACTIONS if self.actions[a])
        text = f"{self.calls} calls, {actions or 'none'}"
        if self.bad:
            n = len(self.bad)
            text += f"; {n} bad line{'s' if n != 1 else ''} (first: line {self.bad[0]})"
        return f"{text}; {self._rate(time.perf_counter()):.0f} calls/s"

    @property
    def ok(self) -> bool:
        return not self.bad and set(self.actions) <= {"allow"}


def run(screen, lines: Iterable[bytes], out: IO[str], err: IO[str], progress: bool,
        default_now: Optional[float] = None) -> bool:
    """Screen every call of `lines`, write one record per line to `out` and the summary to `err`;
    True when every call was allowed and every line was a call."""
    batch = Run(screen, out, err if progress else None, default_now)
    batch.feed(lines)
    if progress:
        err.write("\r\x1b[K")
    print(batch.summary(), file=err)
    return batch.ok


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
