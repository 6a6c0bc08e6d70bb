"""Screening in `manverify serve` (configuration key `screening`, the mapping Screen.from_dict()
takes, file names relative to the configuration file's folder).

  - a verification answer carries "screening": the ScreenDecision's to_dict(), in both dialects,
    for a call the policy lets continue (every call when no policy is configured); the policy's
    "decision" stays MAN's own;
  - POST /screening/v1/check, for SBCs that verify calls themselves:
        {"orig": "+33612345678", "dest": "0198765432", "entry": "national", "partner": "op-a",
         "time": 1767225600, "verstat": "TN-Validation-Passed", "attest": "A"}
    (only orig and dest required) → {"screening": {...}}; a body of another shape is a 400.

Each worker builds its own Screen (its own Redis connections). A reload keeps the Screen in use
unless the `screening` mapping changed (its lists and MAJNUM file reload by themselves).
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Optional

from ..config import build_screen
from ..policy import ENTRIES
from ..result import Result
from . import dialects

CHECK = "/screening/v1/check"
_KEYS = frozenset(("orig", "dest", "entry", "partner", "time", "verstat", "attest"))


def build(config: Mapping[str, Any], path: "str | os.PathLike", reload: bool = True):
    """The Screen the configuration describes (None without `screening`), its files read from the
    folder of the configuration at `path`."""
    return build_screen(config, os.path.dirname(os.path.abspath(path)), reload=reload)


def validate(config: Mapping[str, Any], path: "str | os.PathLike") -> None:
    """Build the Screen once and drop it: a mistake shows before any worker starts."""
    screen = build(config, path, reload=False)
    if screen is not None:
        screen.close()


def attach(setup, path: "str | os.PathLike", old=None):
    """`setup` with its Screen: the old Setup's when the `screening` mapping is the same."""
    if old is not None and old.screen is not None and setup.config.get("screening") == old.config.get("screening"):
        return setup._replace(screen=old.screen)
    screen = build(setup.config, path)
    if screen is not None:
        from .. import metrics

        metrics.track_screen(screen)
    return setup._replace(screen=screen)


def retire(old, new) -> None:
    """After a reload: close the Screen no Setup uses any more. The caller has written its last
    counts out first (the export holds Screens weakly: a dropped one's unwritten counts would be lost)."""
    if old is not None and old.screen is not None and old.screen is not new.screen:
        old.screen.close()


def remote(setup) -> bool:
    """Whether screening waits on a shared store (Redis): its calls go to the worker's threads,
    never the event loop (the store's budget bounds the wait, but it is a wait)."""
    return setup.screen is not None and setup.screen.counters.backend != "local"


def annotate(setup, response: dict, call: dialects.Verification, result: Result, decision) -> dict:
    """A verification answer with the screening of its call, when the call continues."""
    if setup.screen is None or (decision is not None and decision.reject):
        return response
    orig = result.orig_tn or call.orig
    s = setup.screen.check(orig=orig, dest=call.dest, now=None, entry="national", partner=None, result=result)
    response["verificationResponse"]["screening"] = s.to_dict()
    return response


def check(setup, body: Any) -> dict:
    """POST /screening/v1/check: the screening of one call an SBC verified itself."""
    if not isinstance(body, dict):
        raise dialects.BadRequest("the body must be a JSON object")
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise dialects.BadRequest(f"unknown key(s) {unknown}; known: {sorted(_KEYS)}")
    orig, dest = (_text(body.get(k), k) for k in ("orig", "dest"))
    entry = body.get("entry", "national")
    if entry not in ENTRIES:
        raise dialects.BadRequest(f"entry must be one of {', '.join(ENTRIES)}, not {entry!r}")
    partner = body.get("partner")
    if partner is not None:
        _text(partner, "partner")
    now = body.get("time")
    # the range refuses NaN and the infinities too
    if now is not None and (isinstance(now, bool) or not isinstance(now, (int, float)) or not 0 <= now < 2 ** 33):
        raise dialects.BadRequest("time must be the call's time as epoch seconds")
    result = _result(body.get("verstat"), body.get("attest"))
    s = setup.screen.check(orig=orig, dest=dest, now=now, entry=entry, partner=partner, result=result)
    return {"screening": s.to_dict()}


def _result(verstat: Any, attest: Any) -> Optional[Result]:
    """What the SBC's own verification said, as the Result the intl.* rules read."""
    from ..screen.batch import verification

    try:
        return verification(verstat, attest)
    except ValueError as e:
        raise dialects.BadRequest(str(e)[:200]) from None


def _text(value: Any, what: str) -> str:
    if value is None:
        raise dialects.BadRequest(f"missing mandatory parameter: {what}")
    if not isinstance(value, str) or not value or len(value) > 256:
        raise dialects.BadRequest(f"{what} must be a non-empty string of at most 256 characters")
    return value
