"""The two published shapes of the same requests, read into one form and answered in the request's.

ATIS-1000082 (as SBC vendors document their STI-server client):
  verification  {"verificationRequest": {"from": {"tn": "…"}, "to": {"tn": ["…"]}, "time": <Date as
                epoch>, "identity": "<Identity value>"}} → {"verificationResponse": {"verstat": …,
                "reasoncode": 438, "reasontext": "…"}} (the reason only on failure)
  signing       {"signingRequest": {"attest", "dest": {"tn": [...]}, "iat", "orig": {"tn"}, "origid"}}
                → {"signingResponse": {"identity": "<Identity value>"}}
3GPP TS 24.229 Ms (the neustar/tcs-apis OpenAPI rendering):
  verification  {"verificationRequest": {"identityHeader" | "identityHeaders": [...], "from": "<PAI or
                From>", "to": "<To>", "dest": "<Request-URI>", "time": …}} → {"verificationResponse":
                {"verstatValue": …, "verifyResults": [{"ppt", "status": "pass"|"fail", "reasonCode",
                "reasonText"}]}}
  signing       the claims themselves ({"attest", "dest", "iat", "orig", "origid"}; dest also as
                [{"tn": [...]}]) → {"identityHeader": "<Identity value>"}

Where a policy is configured, a verification response also carries "decision". Anything that is
not one of these shapes is a BadRequest (HTTP 400, {"error": …}); the call's own verdict never is.
"""
from __future__ import annotations

import email.utils
from typing import Any, Iterable, List, NamedTuple, Optional, Union

from .. import tn
from ..checks import numbers_to_check
from ..policy import Decision
from ..result import Result

ATIS, MS = "atis", "3gpp"
MAX_IDENTITY_HEADERS = 32  # more than the verifier evaluates; beyond it the request is refused


class BadRequest(Exception):
    """The request itself is wrong (HTTP 400 with this message): not a verdict on a call."""


class Verification(NamedTuple):
    dialect: str
    identity: Optional[List[str]]  # None: the call had no Identity header
    orig: str
    dest: str
    date: Optional[str]


class Signing(NamedTuple):
    dialect: str
    orig: str
    dest: List[str]
    attest: str
    origid: Optional[str]
    iat: Optional[int]


# ---------------------------------------------------------------------- requests
def verification(body: Any) -> Verification:
    req = _object(_object(body, "the body").get("verificationRequest"), "verificationRequest")
    date = _date(req.get("time"))
    if "identityHeader" in req or "identityHeaders" in req or isinstance(req.get("from"), str):
        values = ([req["identityHeader"]] if req.get("identityHeader") is not None else []) + \
            list(_strings(req.get("identityHeaders") or [], "identityHeaders"))
        for v in values:
            _text(v, "identityHeader")
        if len(values) > MAX_IDENTITY_HEADERS:
            raise BadRequest(f"more than {MAX_IDENTITY_HEADERS} Identity headers")
        orig = _text(req.get("from"), "from")
        to = req.get("to") if req.get("to") is not None else req.get("dest")
        calleds = [_text(to, "to")]
        if req.get("to") is not None and req.get("dest") is not None:
            calleds.append(_text(req["dest"], "dest"))
        return _call(MS, values or None, orig, calleds, date)
    orig = _text(_object(req.get("from"), "from").get("tn"), "from.tn")
    dests = _numbers(_object(req.get("to"), "to").get("tn"), "to.tn")
    identity = req.get("identity")
    if identity is not None:
        identity = [_text(identity, "identity")]
    return _call(ATIS, identity, orig, dests, date)


def _call(dialect: str, identity: Optional[List[str]], orig: str, calleds: List[str],
          date: Optional[str]) -> Verification:
    """The call with the called number it is checked against: the rule sip.check applies too
    (checks.numbers_to_check: the first number, unless a PASSporT names another one presented)."""
    dest = numbers_to_check(identity, [orig], calleds)[1]
    return Verification(dialect, identity, orig, dest, date)


def signing(body: Any) -> Signing:
    body = _object(body, "the body")
    dialect = ATIS if "signingRequest" in body else MS
    req = _object(body["signingRequest"], "signingRequest") if dialect == ATIS else body
    orig = _text(_object(req.get("orig"), "orig").get("tn"), "orig.tn")
    dest = req.get("dest")
    if isinstance(dest, list) and len(dest) == 1:  # the Ms rendering's [{"tn": [...]}]
        dest = dest[0]
    dests = _numbers(_object(dest, "dest").get("tn"), "dest.tn")
    attest = req.get("attest")
    if attest not in ("A", "B", "C"):
        raise BadRequest(f"attest must be A, B or C, not {attest!r}")
    origid = req.get("origid")
    if origid is not None:
        _text(origid, "origid")
    iat = req.get("iat")
    if iat is not None and (type(iat) is not int or iat < 0):
        raise BadRequest("iat must be epoch seconds (a non-negative integer)")
    for number in (orig, *dests):
        if tn.try_canonical(number) is None:
            raise BadRequest(f"{number!r} is not a telephone number")
    return Signing(dialect, orig, dests, attest, origid, iat)


# ---------------------------------------------------------------------- responses
def verification_response(dialect: str, result: Result, decision: Optional[Decision]) -> dict:
    if dialect == ATIS:
        out: dict = {"verstat": result.verstat}
        if not result.ok and result.sip_code:
            out.update(reasoncode=result.sip_code, reasontext=result.reason)
        if result.attest:
            out["attest"] = result.attest
    else:
        out = {"verstatValue": result.verstat, "verifyResults": _verify_results(result)}
    if decision is not None:
        out["decision"] = _decision(decision)
    return {"verificationResponse": out}


def signing_response(dialect: str, identity: str) -> dict:
    return {"signingResponse": {"identity": identity}} if dialect == ATIS else {"identityHeader": identity}


def _verify_results(result: Result) -> List[dict]:
    """One entry per Identity header. A header that is sound in itself fails with the call's code
    when the call failed elsewhere (a called number no PASSporT names, say)."""
    out = []
    for h in result.headers or (result,):  # no header to report (none sent, a bad number): the call
        item: dict = {"ppt": getattr(h, "ppt", None) or "shaken", "status": "pass" if h.ok and result.ok else "fail"}
        code = h.sip_code if not h.ok else result.sip_code
        if item["status"] == "fail" and code:
            item.update(reasonCode=code, reasonText=result.reason if h.ok else h.reason)
        out.append(item)
    return out


def _decision(d: Decision) -> dict:
    out: dict = {"action": d.action, "rule": d.rule}
    if d.reject:
        out.update(code=d.code, reason=d.reason)
    else:
        out["verstat"] = d.verstat
        if d.reason_header:
            out["reasonHeader"] = d.reason_header
        out["mask"] = d.mask
    return out


# ---------------------------------------------------------------------- field readers
def _object(value: Any, what: str) -> dict:
    if value is None:
        raise BadRequest(f"missing mandatory parameter: {what}")
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a JSON object")
    return value


def _text(value: Any, what: str) -> str:
    if value is None:
        raise BadRequest(f"missing mandatory parameter: {what}")
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{what} must be a non-empty string")
    return value


def _strings(values: Any, what: str) -> Iterable[str]:
    if not isinstance(values, list):
        raise BadRequest(f"{what} must be an array of strings")
    return [_text(v, what) for v in values]


def _numbers(value: Union[str, list, None], what: str) -> List[str]:
    values = [value] if isinstance(value, str) else value
    if values is None:
        raise BadRequest(f"missing mandatory parameter: {what}")
    out = list(_strings(values, what))
    if not out:
        raise BadRequest(f"{what} needs at least one number")
    if len(out) > MAX_IDENTITY_HEADERS:
        raise BadRequest(f"{what} holds more than {MAX_IDENTITY_HEADERS} numbers")
    return out


def _date(value: Any) -> Optional[str]:
    """The SIP Date header the request's `time` (epoch seconds) stands for."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 2 ** 33:
        raise BadRequest("time must be the Date header as epoch seconds")
    return email.utils.formatdate(value, usegmt=True)
