"""From a raw SIP request to a Decision: what a proxy integration calls once per INVITE.

    verifier = manverify.Verifier(trust_anchors=[...], certificates="/var/lib/man/certs")
    policy = manverify.policy.Policy(role="terminating")
    d = manverify.sip.check(raw_invite, verifier, policy, entry="national")
    if d.reject: reply(d.code, d.reason)
    else: remove d.remove_headers, add d.add_headers, relay

What is read from the request (RFC 3261 header syntax; names are case-insensitive):
  - every Identity header field, also the compact name `y`, folded or not; each field is one value
    (Identity fields are never comma lists, RFC 8224 §4.1);
  - the calling number: each P-Asserted-Identity value (several fields or a comma list; at most
    two, RFC 3325 §9.1) first, then From; an anonymous From without P-Asserted-Identity gives no
    calling number;
  - the called number: To, then the Request-URI (which ones a PASSporT is checked against is
    checks.numbers_to_check's rule, the service's too);
  - Date and P-Identity-Bypass.
Nothing that arrives with the request raises: missing, duplicated, folded, oversized or binary
headers become the Decision the policy defines for the Result the verifier gives them. A request
that cannot be read as one (over the limits below, three P-Asserted-Identity values, a line break
inside a value handed over already parsed) is a 400. Reading costs time linear in the request, and
every loop over its parts is bounded by a limit here or in identity.py.
"""
from __future__ import annotations

import re
from collections.abc import Mapping as _AnyMapping
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Tuple, Union

from . import tn
from .checks import MAX_HEADERS, check_form, numbers_to_check
from .errors import UsageError
from .policy import REJECT, Decision, Policy
from .result import Result

MAX_HEADER_BLOCK = 256 * 1024  # bytes of header text read; a UDP SIP message is at most 64 KiB
MAX_FIELDS = 512  # header lines read per request (a folded field's continuation lines count)
MAX_BYPASS = 1024  # characters of a P-Identity-Bypass token kept
MAX_PAI = 2  # P-Asserted-Identity values: one, or a sip/sips and a tel URI (RFC 3325 §9.1)

# Compact header names (RFC 3261 §7.3.3, RFC 8224 §4.1) of the fields read here.
_COMPACT = {"y": "identity", "f": "from", "t": "to"}
_FOLD = re.compile(r"\r?\n[ \t]+")
# The fields read here, by lower-cased name (header names are ASCII tokens, RFC 3261 §25.1).
_WANTED = frozenset(("identity", "y", "p-asserted-identity", "from", "f", "to", "t", "date", "p-identity-bypass"))
# First characters a wanted field's line can start with: most lines (Via, Call-ID, CSeq, Contact,
# ...) are passed over on that alone.
_FIRST = frozenset("iIyYpPfFtTdD \t")
# A user part (up to @ ; > ? or the end) that is one of these names: read from its start, so a
# long value is not split to find out.
_ANONYMOUS_USER = re.compile(r"\s*(?:anonymous|restricted|unavailable|unknown)\s*(?:[@;>?]|\Z)")
_REQUEST_LINE = re.compile(r"([A-Za-z]+) +(\S+) +SIP/2\.0\s*\Z", re.IGNORECASE)
_VERSTAT = re.compile(r";\s*verstat\s*=\s*[^;>?\s]*", re.IGNORECASE)
# One element of a comma list (RFC 3261 §7.3.1), after any commas and blanks before it: commas
# inside a quoted display name or inside <...> do not separate. An unclosed quote or < runs to
# the end, as it would for any reader. One regex pass per element keeps a 256 KiB list linear.
_LIST_ELEMENT = re.compile(r'[\s,]*((?:[^,"<]+|"[^"\\]*(?:\\.[^"\\]*)*"?|<[^>]*>?)*)')

_DEFAULT_POLICY = Policy()

HeadersIn = Union[str, bytes, Iterable[Union[str, bytes]], Mapping[str, Any]]


class Request(NamedTuple):
    """The parts of a SIP request that identity verification needs (values as received)."""

    method: Optional[str] = None
    ruri: Optional[str] = None
    identity: Tuple[str, ...] = ()
    pai: Tuple[str, ...] = ()  # each P-Asserted-Identity value, comma lists split
    from_: Optional[str] = None
    to: Optional[str] = None
    date: Optional[str] = None
    bypass: Optional[str] = None  # P-Identity-Bypass token
    problem: str = ""  # why the request is not one that can be read ("" when it is)


# ---------------------------------------------------------------------- reading the request
def parse(request: HeadersIn, ruri: Optional[str] = None) -> Request:
    """Read a request: raw text/bytes (request line optional, body ignored), a list of header
    lines, or a mapping {header name: value or list of values}. `ruri` overrides the Request-URI.
    Raises UsageError only for an argument of the wrong type."""
    # collections.abc, not typing: typing.Mapping's isinstance check runs Python code per call
    if type(request) is not str and isinstance(request, _AnyMapping):
        fields, problem = _fields_from_mapping(request)
        method = None
        request_uri = None
    else:
        text, problem = _text(request)
        method, request_uri, fields, problem2 = _fields_from_text(text)
        problem = problem or problem2
    if ruri is not None:
        if not isinstance(ruri, str):
            raise UsageError(f"ruri must be a str, not {type(ruri).__name__}")
        request_uri = ruri
    found: Dict[str, List[str]] = {"identity": [], "p-asserted-identity": [], "from": [], "to": [],
                                   "date": [], "p-identity-bypass": []}
    for name, value in fields:
        bucket = found.get(name)
        if bucket is not None:
            bucket.append(value)
    pai: List[str] = []
    for v in found["p-asserted-identity"]:
        pai.extend(_split_commas(v, MAX_PAI + 1 - len(pai)))
        if len(pai) > MAX_PAI:
            problem = problem or f"more than {MAX_PAI} P-Asserted-Identity values (RFC 3325 §9.1 allows two)"
            del pai[MAX_PAI:]
            break
    bypass = found["p-identity-bypass"][0].strip()[:MAX_BYPASS] if found["p-identity-bypass"] else None
    return Request(
        method=method,
        ruri=request_uri,
        identity=tuple(v for v in found["identity"] if v),
        pai=tuple(pai),
        from_=found["from"][0] if found["from"] else None,
        to=found["to"][0] if found["to"] else None,
        date=found["date"][0] if found["date"] else None,
        bypass=bypass or None,
        problem=problem,
    )


def _text(request) -> Tuple[str, str]:
    problem = ""
    if isinstance(request, (bytes, bytearray, memoryview)):
        raw = bytes(request)
        end = _header_end(raw, b"\r\n\r\n", b"\n\n")
        raw = raw[:end]
        if len(raw) > MAX_HEADER_BLOCK:
            raw, problem = raw[:MAX_HEADER_BLOCK], f"header block longer than {MAX_HEADER_BLOCK} bytes"
        # latin-1 never fails: non-ASCII bytes stay visible to the checks that reject them.
        return raw.decode("latin-1"), problem
    if isinstance(request, str):
        text = request[:_header_end(request, "\r\n\r\n", "\n\n")]
    else:
        try:
            lines = list(request)
        except TypeError:
            raise UsageError(
                f"request must be str, bytes, a list of header lines or a mapping, not {type(request).__name__}"
            ) from None
        out = []
        for line in lines:
            if isinstance(line, (bytes, bytearray)):
                line = bytes(line).decode("latin-1")
            elif not isinstance(line, str):
                raise UsageError(f"header lines must be str or bytes, not {type(line).__name__}")
            out.append(line.rstrip("\r\n"))
        text = "\r\n".join(out)
    if len(text) > MAX_HEADER_BLOCK:
        text, problem = text[:MAX_HEADER_BLOCK], f"header block longer than {MAX_HEADER_BLOCK} bytes"
    return text, problem


def _header_end(text, crlf2, lf2) -> int:
    end = text.find(crlf2)
    # a bare-LF blank line before the CRLF one (or with none) ends the header block there
    lf = text.find(lf2, 0, end if end >= 0 else len(text))
    if lf >= 0:
        return lf
    return end if end >= 0 else len(text)


def _fields_from_text(text: str):
    problem = ""
    # Lines are counted before folding is undone, so that unfolding too does bounded work.
    if text.count("\n") > MAX_FIELDS:  # the request line and MAX_FIELDS header lines
        problem = f"more than {MAX_FIELDS} header lines"
        text = "\n".join(text.split("\n", MAX_FIELDS + 1)[:MAX_FIELDS + 1])
    if "\n " in text or "\n\t" in text:  # folded lines (rare): unfold first
        text = _FOLD.sub(" ", text)
    method = ruri = None
    first, _, rest = text.partition("\n")
    m = _REQUEST_LINE.match(first.rstrip("\r"))
    if m:
        method, ruri = m.group(1).upper(), m.group(2)
        text = rest
    # A field is "name: value" on one line, the name between optional blanks; a value ends at
    # the line's CR (a stray CR inside a line ends it too).
    fields = []
    for line in text.split("\n"):
        if line[:1] not in _FIRST:
            continue
        name, colon, value = line.partition(":")
        if colon:
            name = name.strip(" \t").lower()
            if name in _WANTED:
                fields.append((_COMPACT.get(name, name), value.partition("\r")[0].strip()))
    return method, ruri, fields, problem


def _fields_from_mapping(headers: Mapping[str, Any]):
    """A request handed over already parsed: the same limits as for text, and no line break left
    inside a value once folding is undone (a value relayed with verstat would carry it into the
    next hop's headers: header injection)."""
    fields = []
    size = lines = 0
    for name, value in headers.items():
        if not isinstance(name, str):
            raise UsageError(f"header names must be str, not {type(name).__name__}")
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if v is None:
                continue
            if isinstance(v, (bytes, bytearray)):
                v = bytes(v).decode("latin-1")
            elif not isinstance(v, str):
                raise UsageError(f"header {name!r} must be str, bytes or a list of them, not {type(v).__name__}")
            size += len(name) + len(v)
            if size > MAX_HEADER_BLOCK:
                return fields, f"header fields longer than {MAX_HEADER_BLOCK} characters in all"
            lines += 1 + v.count("\n")
            if lines > MAX_FIELDS:
                return fields, f"more than {MAX_FIELDS} header lines"
            if "\n" in v or "\r" in v:
                v = _FOLD.sub(" ", v)
                if "\n" in v or "\r" in v:
                    return fields, f"header {name[:40]!r} has a line break (CR or LF) in its value"
            fields.append((_name(name), v.strip()))
    return fields, ""


def _name(name: str) -> str:
    name = name.strip().lower()
    return _COMPACT.get(name, name)


def _split_commas(value: str, limit: int) -> List[str]:
    """The first `limit` non-empty elements of a comma list (RFC 3261 §7.3.1)."""
    if "," not in value:
        value = value.strip()
        return [value] if value and limit > 0 else []
    out: List[str] = []
    pos = 0
    while len(out) < limit:
        m = _LIST_ELEMENT.match(value, pos)
        element = m.group(1).strip()
        if not element:  # only commas and blanks were left
            break
        out.append(element)
        pos = m.end()
    return out


def is_anonymous(value: Optional[str]) -> bool:
    """Whether a From/PAI value hides the caller (RFC 3323 §4.1.1.3 and common practice)."""
    if not value:
        return False
    low = value.lower()
    if "anonymous.invalid" in low:
        return True
    uri = (low[low.find("<") + 1:] if "<" in low else low).lstrip()
    for scheme in ("sip:", "sips:", "tel:"):
        if uri.startswith(scheme):
            return _ANONYMOUS_USER.match(uri, len(scheme)) is not None
    return low.strip().startswith(('"anonymous"', "anonymous"))


# ---------------------------------------------------------------------- numbers of the call
def calling_candidates(req: Request) -> List[Tuple[str, str]]:
    """(value, canonical number) of each usable calling identity, in the order they are tried:
    every P-Asserted-Identity, then From unless anonymous. Values that are not numbers are left
    out; duplicates (a sip and a tel PAI for the same number) count once."""
    values = list(req.pai)
    if req.from_ is not None and not is_anonymous(req.from_):
        values.append(req.from_)
    return _candidates(values, 15)


def called_candidates(req: Request) -> List[Tuple[str, str]]:
    """(value, canonical number) for the called number: To, then the Request-URI."""
    return _candidates([v for v in (req.to, req.ruri) if v is not None], 20)


def _candidates(values: List[str], max_digits: int) -> List[Tuple[str, str]]:
    out: List[Tuple[str, str]] = []
    seen = set()
    for v in values:
        number = _number(v, max_digits)
        if number is not None and number not in seen:
            seen.add(number)
            out.append((v, number))
    return out


# ---------------------------------------------------------------------- the decision
def check(
    request: HeadersIn,
    verifier: Any,
    policy: Optional[Policy] = None,
    *,
    entry: str = "national",
    ruri: Optional[str] = None,
    now: Optional[float] = None,
    screen: Any = None,
    partner: Optional[str] = None,
) -> Decision:
    """Verify one request and apply the policy. The returned Decision carries the header edits
    for a relayed request (remove_headers, then add_headers): P-Asserted-Identity with `verstat`,
    a Reason header in monitoring mode, Privacy: id when the number is to be masked.

    With `screen` (a manverify.screen.Screen), a call the policy lets continue is then screened
    (`partner`: the interconnect partner it came from, for per-partner lists); see _screened()."""
    policy = policy or _DEFAULT_POLICY
    req = parse(request, ruri=ruri)
    pai_numbers = [_number(v) for v in req.pai]
    result, calling = _verify(req, pai_numbers, verifier, policy, now)
    if policy.role != "transit":  # a transit hop checks format only: no verification to count
        verifier._count(result)  # once per request, whatever _verify tried
    decision = policy.decide(result, entry=entry, calling=calling, bypass=req.bypass)
    if decision.reject:
        return decision
    decision = _with_edits(decision, req, pai_numbers, calling)
    if screen is not None:
        decision = _screened(decision, screen, req, calling, entry, partner, now)
    return decision


def _screened(d: Decision, screen: Any, req: Request, calling: Optional[str], entry: str,
              partner: Optional[str], now: Optional[float]) -> Decision:
    """A continuing call's Decision after screening (SCREENING.md, "Decision"): reject answers the
    screening code (608 unless configured 603) with a Reason header naming the rules; tag adds the
    `screen.tag_header` header with the label; mask withholds the number as the policy's mask
    does; divert sends the call to `divert_to`; allow (and report-only) changes nothing but the
    record. Screen.check never raises for call data: it fails open on its own faults."""
    dest = _first_number((req.to,), 20) or _first_number((req.ruri,), 20)  # called_candidates' first
    s = screen.check(orig=calling, dest=dest, now=now, entry=entry, partner=partner, result=d.result)
    if s.action == "reject":
        return d._replace(action=REJECT, code=s.code, reason=s.reason, verstat=None,
                          reason_header=s.reason_header(), mask=False, rule="screening",
                          remove_headers=(), add_headers=(), screening=s)
    if s.action == "tag":
        label = s.label or " ".join(s.acted)
        return d._replace(add_headers=d.add_headers + ((screen.tag_header, label),), screening=s)
    if s.action == "mask" and not d.mask:
        return d._replace(mask=True, remove_headers=d.remove_headers + ("Privacy",),
                          add_headers=d.add_headers + (("Privacy", "id"),), screening=s)
    if s.action == "divert":
        return d._replace(rule="screening", divert_to=s.divert_to, screening=s)
    return d._replace(screening=s)


def _verify(req: Request, pai_numbers: List[Optional[str]], verifier, policy: Policy,
            now) -> Tuple[Result, Optional[str]]:
    # The usual INVITE has one PAI (or a From) and a To that are numbers: canonicalise those
    # first, and the others only when the call did not verify with them.
    orig = first = _first_of(pai_numbers) or _first_number((req.from_,))
    if req.problem:
        return _fail(400, f"malformed request: {req.problem}"), first
    if policy.role == "transit":
        return check_format(req.identity, getattr(verifier, "profile", "man")), first
    if not req.identity:
        return verifier._decide(None), first  # the verifier's own 428
    identity = list(req.identity)
    dest = _first_number((req.to,), 20) or _first_number((req.ruri,), 20)
    result = verifier._decide(identity, orig=orig if orig is not None else _first_present(req),
                             dest=dest if dest is not None else (req.to or req.ruri), date=req.date, now=now)
    if result.ok or not (result.orig_tn or result.dest_tns):
        return result, first
    # Which of the call's numbers a PASSporT is checked against is one rule for every way in
    # (checks.numbers_to_check): the first of each, unless a PASSporT names another number the
    # call presents (a second P-Asserted-Identity, the Request-URI rather than To). A call that
    # verified with the first numbers would have been given them: only a failed one is asked.
    alt_orig, alt_dest = numbers_to_check(identity, [n for _, n in calling_candidates(req)],
                                          [n for _, n in called_candidates(req)])
    if (alt_orig, alt_dest) == (orig, dest):
        return result, first
    result = verifier._decide(identity, orig=alt_orig, dest=alt_dest, date=req.date, now=now)
    return result, alt_orig if result.ok else first


def _number(value: str, max_digits: int = 15) -> Optional[str]:
    """The canonical number a From/To/PAI value or Request-URI names; None for an anonymous
    identity or anything that is not a telephone number."""
    return None if is_anonymous(value) else tn.try_canonical(value, max_digits=max_digits)


def _first_of(numbers: List[Optional[str]]) -> Optional[str]:
    for n in numbers:
        if n is not None:
            return n
    return None


def _first_number(values, max_digits: int = 15) -> Optional[str]:
    return _first_of([_number(v, max_digits) for v in values if v is not None])


def _first_present(req: Request) -> Optional[str]:
    """The calling value to report when none is a number (the verifier answers 400)."""
    if req.pai:
        return req.pai[0]
    if req.from_ is not None and not is_anonymous(req.from_):
        return req.from_
    return None


def _fail(code: int, detail: str) -> Result:
    return Result(ok=False, sip_code=code, detail=detail)


def check_format(values: Iterable[str], profile: str = "man") -> Result:
    """Presence and format only (the transit role): the first Identity value whose form passes the
    verifier's own checks of it (checks.check_form, under the verifier's profile); no time,
    number, certificate or signature check. ok=True means "well-formed", never "verified"."""
    values = [v for v in values if v and v.strip()]
    if not values:
        return _fail(428, "no Identity header")
    first: Optional[Result] = None
    for v in values[:MAX_HEADERS]:
        c = check_form(v, profile)
        if c.code is not None:
            first = first or _fail(c.code, c.detail)
            continue
        claims = c.claims
        if claims is None:
            return Result(ok=True, sip_code=None, detail="compact form present (transit: format only)", x5u=c.x5u)
        return Result(ok=True, sip_code=None, detail="well-formed (transit: format only, not verified)",
                      attest=claims.attest, orig_tn=claims.orig_tn, dest_tns=claims.dest_tns,
                      x5u=c.x5u, origid=claims.origid, iat=claims.iat)
    return first


# ---------------------------------------------------------------------- header edits
def with_verstat(value: str, verstat: Optional[str]) -> str:
    """`value` (a P-Asserted-Identity/From value) with `;verstat=` set on its URI (3GPP TS 24.229
    §7.2A.20); an upstream verstat is replaced, never passed on (verstat None: only removed)."""
    lt, gt = value.find("<"), value.rfind(">")
    if 0 <= lt < gt:
        uri = value[lt + 1:gt]
        head, tail = value[:lt + 1], value[gt:]
    else:
        uri, head, tail = value.strip(), "<", ">"
    uri = _VERSTAT.sub("", uri)
    if verstat is None:
        return f"{head}{uri}{tail}"
    base, q, headers = uri.partition("?")
    return f"{head}{base};verstat={verstat}{q}{headers}{tail}"


def _address(value: str) -> str:
    """The name-addr/addr-spec of a From value without its header parameters (tag=...)."""
    gt = value.rfind(">")
    if gt >= 0:
        return value[:gt + 1]
    return value.split(";", 1)[0].strip()


def _verstat_for(d: Decision, number: Optional[str]) -> Optional[str]:
    """The verstat of one calling identity (3GPP TS 24.229 §7.2A.20: it reports on the number of
    the URI that carries it). TN-Validation-Passed only on the number the verified PASSporT's
    orig named: another PAI was not signed. Failed and No-TN-Validation on every number, none of
    which was validated. Nothing on an identity that is not a number."""
    if number is None:
        return None
    if d.result is not None and d.result.ok:
        return d.verstat if number == d.result.orig_tn else None
    return d.verstat


def _with_edits(d: Decision, req: Request, pai_numbers: List[Optional[str]], calling: Optional[str]) -> Decision:
    remove: List[str] = []
    add: List[Tuple[str, str]] = []
    if d.verstat is not None:
        if req.pai:
            remove.append("P-Asserted-Identity")
            add.extend(("P-Asserted-Identity", with_verstat(v, _verstat_for(d, n)))
                       for v, n in zip(req.pai, pai_numbers))
        elif calling is not None and req.from_ is not None:
            # No PAI: assert the From number, with verstat, rather than touching From itself.
            add.append(("P-Asserted-Identity", with_verstat(_address(req.from_), _verstat_for(d, calling))))
    if d.reason_header:
        add.append(("Reason", d.reason_header))
    if d.mask:
        remove.append("Privacy")
        add.append(("Privacy", "id"))
    # remove_headers and add_headers are next to each other in Decision (tests/test_sip.py checks
    # it): rebuilding the tuple costs a third of _replace() on the per-call path.
    return _new_tuple(Decision, d[:_EDITS] + (tuple(remove), tuple(add)) + d[_EDITS + 2:])


_new_tuple = tuple.__new__
_EDITS = Decision._fields.index("remove_headers")
