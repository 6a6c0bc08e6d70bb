"""Worst-case requests within the size limits, shared by tests/test_hostile.py (a loose time bound
under hypothesis) and benches/test_bench_hostile.py (the figures).

Each shape fills one limit with what a parser does the most work for: thousands of Identity
parameters, a quoted parameter full of escapes, a P-Asserted-Identity comma list of a quarter
megabyte, folded lines, a request line or a From as long as the header block allows.
"""
from __future__ import annotations

import itertools
import string
from typing import Callable, Dict, Iterator, List

from manverify import identity, sip

ORIG, DEST = "+33612345678", "+33198765432"
RURI = f"sip:{DEST}@proxy.example;user=phone"
_NAME_CHARS = string.ascii_lowercase + string.digits


def _param_names() -> Iterator[str]:
    for size in itertools.count(1):
        for chars in itertools.product(_NAME_CHARS, repeat=size):
            yield "".join(chars)


def identity_value(token: str, seed: int = 0, kind: str = "params", size: int = identity.MAX_HEADER_BYTES - 2) -> str:
    """One Identity value of `size` characters: the usual parameters, then
    params   as many distinct parameters as fit (";a;b;...;a9"), about 2,300;
    quoted   one quoted parameter of backslash escapes (x="\\"\\"...");
    angle    one parameter in <...> that never closes;
    commas   a parameter value made of commas and quotes."""
    head = f"{token};info=<https://certs.example/{seed}.pem>;alg=ES256;ppt=shaken"
    room = size - len(head)
    if kind == "params":
        out = [head]
        for name in _param_names():
            room -= len(name) + 1
            if room < 0:
                break
            out.append(name)
        return ";".join(out)
    if kind == "quoted":
        return head + ';x="' + "\\\"" * ((room - 5) // 2) + '"'
    if kind == "angle":
        return head + ";x=<" + "a" * (room - 3)
    if kind == "commas":
        return head + ';x="' + ',"' * ((room - 4) // 2)
    raise ValueError(kind)


def invite(*headers: str, ruri: str = RURI) -> str:
    lines = [f"INVITE {ruri} SIP/2.0", "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1", "Call-ID: c1",
             "CSeq: 1 INVITE", *headers, "Content-Length: 0"]
    return "\r\n".join(lines) + "\r\n\r\n"


def _at_cap(build: Callable[[str], object], unit: str) -> object:
    """build(filler) with `unit` repeated as often as the header-block limit allows."""
    base = build("")
    room = sip.MAX_HEADER_BLOCK - _block_size(base)
    return build(unit * (room // len(unit)))


def _block_size(request: object) -> int:
    if isinstance(request, dict):
        return sum(len(k) + sum(map(len, v if isinstance(v, list) else [v])) for k, v in request.items())
    return len(request) - 4  # the blank line ending the header block is not part of it


def requests(token: str, identity_header: str) -> Dict[str, object]:
    """Name -> request (text, or a mapping) for sip.check; each fills the header-block limit."""
    usual = [f"From: <sip:{ORIG}@h>;tag=1", f"To: <tel:{DEST}>"]
    per_value = identity.MAX_HEADER_BYTES - 2
    n_values = (sip.MAX_HEADER_BLOCK - 400) // (per_value + 12)
    out: Dict[str, object] = {}
    for kind in ("params", "quoted", "angle", "commas"):
        values = [identity_value(token, i, kind, per_value) for i in range(n_values)]
        out[f"identity {kind} x{n_values}"] = invite(*usual, *(f"Identity: {v}" for v in values))
    pai = {"elements": ("", "<sip:1@h>,"), "commas": ("", ","), "quotes": ("", '"a,\\"",'),
           "open angle": ("<", "a,")}
    for name, (start, unit) in pai.items():
        out[f"PAI {name}"] = _at_cap(lambda f, start=start: invite(f"P-Asserted-Identity: {start}{f}", *usual,
                                                                    identity_header), unit)
    out["PAI fields"] = invite(*[f"P-Asserted-Identity: <sip:{i}@h>" for i in range(sip.MAX_FIELDS - 8)],
                               identity_header)
    out["From digits"] = _at_cap(lambda f: invite(f"From: <sip:+{f}", f"To: <tel:{DEST}>", identity_header), "1")
    out["From blanks"] = _at_cap(lambda f: invite(f"From: {f}x", f"To: <tel:{DEST}>", identity_header), " \t")
    out["To separators"] = _at_cap(lambda f: invite(f"From: <sip:{ORIG}@h>", f"To: tel:+{f}", identity_header), "3-")
    out["Date"] = _at_cap(lambda f: invite(*usual, identity_header, f"Date: {f}"), "Mon, ")
    out["bypass"] = _at_cap(lambda f: invite(*usual, f"P-Identity-Bypass: {f}"), "t")
    out["request line"] = _at_cap(lambda f: invite(*usual, identity_header, ruri=f"sip:{f}"), "1 ")
    out["folding"] = _at_cap(lambda f: invite(*usual, identity_header + f), "\r\n ;")
    out["fields"] = invite(*usual, identity_header, *[f"X-H{i}: " + "v" * 480 for i in range(sip.MAX_FIELDS - 8)])
    out["mapping"] = _at_cap(lambda f: {"From": f"<sip:{ORIG}@h>;tag=1", "To": f"<tel:{DEST}>",
                                        "P-Asserted-Identity": f, "Identity": [identity_header[10:]]}, "<sip:1@h>,")
    return out


def identity_lists(token: str) -> Dict[str, List[str]]:
    """Name -> the Identity values of one verify() call, at the per-value and per-call limits."""
    per_value = identity.MAX_HEADER_BYTES - 2
    return {f"{kind} x{n}": [identity_value(token, i, kind, per_value) for i in range(n)]
            for kind in ("params", "quoted", "angle", "commas") for n in (1, 10)}
