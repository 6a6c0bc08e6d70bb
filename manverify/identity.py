"""The Identity header field (RFC 8224 §4.1): cut into token and parameters, nothing more.

    Identity = "Identity" HCOLON signed-identity-digest SEMI ident-info *( SEMI ident-info-params )
    ident-info = "info" EQUAL LAQUOT absoluteURI RAQUOT
    ident-info-params = "alg" EQUAL token / "ppt" EQUAL token / generic-param

Input is tolerated as seen in the wild (any case, spaces around ; and =, folding, quoted values,
parameters in any order); what a receiving policy rejects is decided by the verifier, not here.
"""
from __future__ import annotations

import re
from typing import Iterable, List, NamedTuple, Optional, Tuple, Union

MAX_HEADER_BYTES = 8192  # one Identity header value; a full SHAKEN one is ~600-900 bytes
# Parameters read per value: RFC 8224 defines three (info, alg, ppt). Thousands fit in 8 KiB, and
# each costs a few microseconds to read; a header with more than this is refused, not read.
MAX_PARAMS = 16

_FOLD = re.compile(r"\r?\n[ \t]+")
_NAME = re.compile(r"\s*(identity|y)\s*:", re.IGNORECASE)
_DIGEST = re.compile(r"[A-Za-z0-9_\-.]+")
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_WS = re.compile(r"[ \t]*")
_QUOTED = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"', re.DOTALL)  # quoted-string, RFC 3261 §25.1
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
# Control characters (RFC 5234 CTL). absoluteURI and token hold none (a URI is printable ASCII
# without space, " or <: _FAST_URI below); a quoted-string's qdtext holds none but HTAB, though a
# quoted-pair may escape one (RFC 3261 §25.1).
_QDTEXT_CTL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_CTL = re.compile(r"[\x00-\x1f\x7f]")
_DEFINED = ("info", "alg", "ppt")  # RFC 8224's own parameters: a URI and two tokens
_PAIR_MARK = "\ue000"  # a private-use character: never in the ASCII values the verifier parses
# The shape every SHAKEN signer emits ("tok;info=<url>;alg=ES256;ppt=shaken") is recognised
# with a few string operations (common_form); anything else goes through the general parser.
_FAST_URI = re.compile(r"[!#-;=?-~]+")  # printable, no space, no < or >
_FAST_PPT = {"shaken": "shaken", "div": "div", "div-o": "div-o"}


class IdentityHeader(NamedTuple):
    """One parsed Identity header value."""

    token: str  # signed-identity-digest: "hdr.claims.sig" or compact "..sig"
    info: Optional[str]
    alg: Optional[str]
    ppt: Optional[str]
    params: Tuple[Tuple[str, str], ...]  # every parameter, lower-cased names, in order
    raw: str

    @property
    def compact(self) -> bool:
        return self.token.startswith("..")


class HeaderSyntaxError(ValueError):
    """Why a header value is not an Identity header; turned into a 438 by the verifier."""


def unfold(value: str) -> str:
    """Undo header folding (CRLF followed by whitespace) and strip an "Identity:"/"y:" name."""
    if "\n" in value:
        value = _FOLD.sub(" ", value)
    m = _NAME.match(value)
    if m:
        value = value[m.end():]
    return value.strip()


def common_form(value: str) -> Optional[Tuple[str, str, str]]:
    """(token, info, ppt) when the value is exactly "tok;info=<url>;alg=ES256;ppt=shaken|div|div-o",
    else None. The token is not checked here: its parts must pass strict base64url decoding."""
    token, _, rest = value.partition(";")
    if not rest.startswith("info=<"):
        return None
    info, sep, ppt = rest[6:].partition(">;alg=ES256;ppt=")
    ppt = _FAST_PPT.get(ppt)
    if sep and ppt and _FAST_URI.fullmatch(info):
        return token, info, ppt
    return None


def parse(value: str) -> IdentityHeader:
    """Parse one header value; raise HeaderSyntaxError with a reason a human can act on."""
    common = common_form(value)
    if common is not None:
        token, info, ppt = common
        # What the general parser treats specially (a header name, spaces) must not be in the
        # token; anything else outside base64url is refused when the token is decoded.
        if (token.count(".") == 2 and ":" not in token and " " not in token and "\t" not in token
                and "\n" not in token):
            return IdentityHeader(token, info, "ES256", ppt, (("info", info), ("alg", "ES256"), ("ppt", ppt)), value)
    return _parse_general(unfold(value))


def _parse_general(value: str) -> IdentityHeader:
    if not value:
        raise HeaderSyntaxError("empty Identity header")
    m = _DIGEST.match(value)
    if not m:
        raise HeaderSyntaxError("Identity header does not start with a base64url token")
    token = m.group()
    if token.count(".") != 2:
        raise HeaderSyntaxError(
            f"signed-identity-digest has {token.count('.') + 1} parts, expected 3 (header.claims.signature)"
        )
    pos = m.end()
    params: List[Tuple[str, str]] = []
    names = set()
    n = len(value)
    while True:
        pos = _WS.match(value, pos).end()
        if pos == n:
            break
        if value[pos] != ";":
            raise HeaderSyntaxError(f"unexpected {value[pos]!r} at offset {pos}; expected ';'")
        pos = _WS.match(value, pos + 1).end()
        m = _TOKEN.match(value, pos)
        if not m:
            raise HeaderSyntaxError(f"missing parameter name at offset {pos}")
        name = m.group().lower()
        pos = _WS.match(value, m.end()).end()
        if pos < n and value[pos] == "=":
            pos = _WS.match(value, pos + 1).end()
            param, pos = _param_value(value, pos, name)
        else:
            param = ""
        if name in names:
            raise HeaderSyntaxError(f"parameter {name!r} appears twice")
        if len(params) == MAX_PARAMS:
            raise HeaderSyntaxError(f"more than {MAX_PARAMS} parameters")
        names.add(name)
        params.append((name, param))
    params = [(k, v[1:-1] if k == "info" else v) for k, v in params]
    found = dict(params)
    info = found.get("info")
    alg = found.get("alg")
    ppt = found.get("ppt")
    return IdentityHeader(token, info, alg, ppt, tuple(params), value)


def _param_value(value: str, pos: int, name: str) -> Tuple[str, int]:
    n = len(value)
    if pos < n and value[pos] == "<":
        end = value.find(">", pos)
        if end < 0:
            raise HeaderSyntaxError(f"unterminated <...> in parameter {name!r}")
        uri = value[pos + 1:end].strip()
        if not _FAST_URI.fullmatch(uri):
            raise HeaderSyntaxError(f"parameter {name!r} is not a URI (printable ASCII without space, < or \")")
        return f"<{uri}>", end + 1
    if pos < n and value[pos] == '"':
        m = _QUOTED.match(value, pos)
        if not m:
            raise HeaderSyntaxError(f"unterminated quoted value in parameter {name!r}")
        quoted = m.group(1)
        if _QDTEXT_CTL.search(_QUOTED_PAIR.sub("", quoted) if "\\" in quoted else quoted):
            raise HeaderSyntaxError(f"quoted value of parameter {name!r} has a control character")
        text = _unescape(quoted)
        if name in _DEFINED and _CTL.search(text):  # a URI or a token, whatever the quoting
            raise HeaderSyntaxError(f"parameter {name!r} has a control character")
        if name == "info" and (len(text) < 3 or text[0] != "<" or text[-1] != ">" or not _FAST_URI.fullmatch(text[1:-1])):
            raise HeaderSyntaxError("info parameter must be a URI in angle brackets: info=<https://...>")
        return text, m.end()
    if name == "info":
        raise HeaderSyntaxError("info parameter must be a URI in angle brackets: info=<https://...>")
    m = _TOKEN.match(value, pos)
    if not m:
        raise HeaderSyntaxError(f"parameter {name!r} has no value")
    return m.group(), m.end()


def _unescape(quoted: str) -> str:
    """The text of a quoted-string: each backslash stands for the character after it (quoted-pair,
    RFC 3261 §25.1). With str methods, not a substitution per escape (~1 µs each, thousands fit in
    one header): read from the left, a run of backslashes pairs off into escaped backslashes, and
    any backslash left over escapes the character after the run."""
    if "\\" not in quoted:
        return quoted
    if _PAIR_MARK in quoted:
        return "".join(_QUOTED_PAIR.split(quoted))
    return quoted.replace("\\\\", _PAIR_MARK).replace("\\", "").replace(_PAIR_MARK, "\\")


def header_values(lines: Union[str, Iterable[str]]) -> List[str]:
    """Pick the Identity header values (full name or compact "y") out of raw SIP header lines.

    Accepts one string holding a header block or an iterable of lines; handles folding. Each
    Identity header field is its own value: they are never comma-joined (RFC 8224 §4.1).
    """
    if isinstance(lines, str):
        text = lines
    else:
        text = "\r\n".join(lines)
    text = _FOLD.sub(" ", text)
    out = []
    for line in re.split(r"\r?\n", text):
        m = _NAME.match(line)
        if m:
            out.append(line[m.end():].strip())
    return out
