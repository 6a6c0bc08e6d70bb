"""Caller look-up and user reports on `manverify serve` (needs `screening` in the configuration):

    GET  /numbers/v1/{tn}            -> 200 the look-up (manverify.screen.lookup)
    POST /numbers/v1/{tn}/reports    {"category": "scam", "reporter": "opaque-id"}
                                     -> 201 the look-up after the report, "counted": true;
                                        200 "counted": false when this reporter already counted
                                        for this number within 30 days

`{tn}` is a number in any common form, percent-encoded where a URL needs it ("+" may stay as it
is). A number, category or reporter that is none, or a body of another shape, is a 400
{"error"}; a reporter over `screening.lookup.report_limit` is a 429 {"error"} with Retry-After.
Authentication is the other endpoints' (API keys, client certificates).
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

from ..errors import ReportLimited, UsageError
from . import dialects

PREFIX = "/numbers/v1/"
REPORTS = "/reports"
MAX_TN = 64  # the longest number text a URL may carry here
_BODY_KEYS = frozenset(("category", "reporter"))


def route(path: str) -> Optional[Tuple[str, str]]:
    """(number text, "GET" or "POST") for a path under /numbers/v1/, None for any other path."""
    if not path.startswith(PREFIX):
        return None
    rest = path[len(PREFIX):]
    if rest.endswith(REPORTS):
        number, method = rest[:-len(REPORTS)], "POST"
    else:
        number, method = rest, "GET"
    if not number or "/" in number or len(number) > MAX_TN:
        return None
    return number, method


def lookup(setup, number: str) -> Tuple[int, Any, tuple]:
    try:
        return 200, setup.screen.lookup(number), ()
    except UsageError as e:
        raise dialects.BadRequest(str(e)) from None


def report(setup, number: str, body: Any) -> Tuple[int, Any, tuple]:
    if not isinstance(body, dict):
        raise dialects.BadRequest('the body must be a JSON object: {"category", "reporter"}')
    unknown = sorted(set(body) - _BODY_KEYS)
    if unknown:
        raise dialects.BadRequest(f"unknown key(s) {unknown}; known: {sorted(_BODY_KEYS)}")
    for key in sorted(_BODY_KEYS):
        if key not in body:
            raise dialects.BadRequest(f"missing mandatory parameter: {key}")
    try:
        out = setup.screen.report(number, body["category"], body["reporter"])
    except ReportLimited:
        raise  # a 429 (app._failure), not a 400
    except UsageError as e:
        raise dialects.BadRequest(str(e)) from None
    return (201 if out["counted"] else 200), out, ()

