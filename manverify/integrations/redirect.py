"""Kamailio as a SIP redirect verification server (STI-VS) for SBCs that send it the INVITE.

Some session border controllers do not call an STI server over HTTP: they send the INVITE itself
to a verification server and act on its final answer (the "SIP INVITE/302" interface that
TransNexus ClearIP, Sansay NSS and other STI services offer, and that ProSBC, Sansay and other
SBCs consume). RedirectApp is that server, with the same configuration, Verifier, Policy and
Decision as the relaying KemiApp; the JSON says "mode": "redirect" and has no next_hop.

For an initial INVITE, manverify.sip.check() decides, then:
  - the call continues → 302 Moved Temporarily, Contact = the request's own target (Request-URI)
    carrying the edits a relay would have made, as URI headers (RFC 3261 §19.1.1: "headers" of a
    SIP URI are header fields of the request formed from it, §19.1.5), escaped:
        Contact: <sip:+33198765432@sbc.example;user=phone?P-Asserted-Identity=%3Csip:%2B33612...
                  %3Bverstat%3DTN-Validation-Passed%3E>
    The same edits are also sent as header fields of the 302 itself (P-Asserted-Identity with
    verstat, and Reason / Privacy when the policy says so), which is where ClearIP-style servers
    put "verstat in the PAI header" and where Sansay's NSS puts the Identity header of its 302.
    An SBC picks whichever its header manipulation reads. (Vendor texts followed: Sansay's "NSS
    SIP INVITE/302 Example", support.sansay.com/t/35hf0pg; ProSBC's "Configuration for STIR/SHAKEN
    with TransNexus ClearIP", docs.prosbc.com: "SIP 302 with ... Verstat in PAI header".)
    Kamailio writes the Contact itself from the Request-URI the script sets (a 3xx lists the
    destination set), in at most 512 bytes (MAX_REDIRECTION_LEN): edits that would not fit stay
    in the 302's header fields only.
  - the policy rejects → its code (403/428/436/437/438, 400) and reason phrase, with a Reason
    header (RFC 3326, or STIR per RFC 9410 when the policy's reason_protocol says so).
Nothing is ever relayed. Other requests: OPTIONS (SBC keepalive) 200 with Allow; ACK absorbed;
CANCEL 481 (every INVITE is answered at once and statelessly, so no transaction is left to
cancel, RFC 3261 §9.2); any request inside a dialog (To tag) 481, this server keeps none; other
methods 405 with Allow (RFC 3261 §21.4.6). A target that is not a sip/sips URI is a 416
(RFC 3261 §8.2.2.1); one that cannot be carried in a Contact unchanged is a 400, one too long
for it a 414.

Every value put in a reply comes from the request: URI headers are percent-escaped outside the
characters RFC 3261 §25.1 allows there (hvalue), and no header line is sent with a CR, LF or NUL.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, NamedTuple, Optional, Sequence, Tuple

from ..errors import ConfigError
from ..policy import Decision, Policy
from .kamailio import KemiApp

ALLOW = "INVITE, ACK, CANCEL, OPTIONS"
# Kamailio prints a 3xx's Contact header field into MAX_REDIRECTION_LEN (512) bytes:
# "Contact: <" uri ">" CRLF SP.
MAX_CONTACT_URI = 512 - len("Contact: <>\r\n ") - 1

# RFC 3261 §25.1: hname / hvalue = *( hnv-unreserved / unreserved / escaped ). "+" is allowed
# there but escaped all the same: decoders written for HTML forms read it as a space, and an
# escape is correct everywhere.
_HEADER_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                         b"-_.!~*'()" b"[]/?:$")
# A target carried unchanged between < and >: visible ASCII without the characters that would end
# or split it there (<, >, ", \) and without headers of its own (a Request-URI has none, §19.1.1).
_TARGET = re.compile(r"(?i)(sips?):[!#-;=@-\[\]-~]+\Z")
_SCHEME = re.compile(r"(?i)([a-z][a-z0-9+.-]*):")
_LINE_BREAKS = re.compile(r"[\r\n\x00]")


class Reply(NamedTuple):
    """A SIP reply to send: status code, reason phrase, the header fields to add, in order, and
    for a redirection the Contact URI."""

    code: int
    phrase: str
    headers: Tuple[Tuple[str, str], ...] = ()
    contact: Optional[str] = None


def escape_header(text: str) -> str:
    """`text` as an hname/hvalue of a SIP URI (RFC 3261 §19.1.1, §25.1): every octet outside the
    allowed set percent-escaped — `%`, `&`, `=`, `;`, `@`, `<`, `>`, quotes, blanks, CR and LF
    included — so that the value can neither end the URI nor add a header line."""
    return "".join(chr(b) if b in _HEADER_SAFE else f"%{b:02X}" for b in text.encode("utf-8", "surrogatepass"))


def contact_uri(target: str, headers: Sequence[Tuple[str, str]]) -> str:
    """`target?Name=value&...`: the URI of a redirection's Contact. Raises ValueError when
    `target` cannot be carried unchanged (see redirect_reply)."""
    if not _TARGET.match(target):
        raise ValueError(f"target {target[:80]!r} cannot be carried in a Contact unchanged")
    query = "&".join(f"{escape_header(name)}={escape_header(value)}" for name, value in headers)
    return f"{target}?{query}" if query else target


def redirect_reply(decision: Decision, target: Optional[str], policy: Policy) -> Reply:
    """The reply of a redirect STI-VS to the INVITE `decision` is about; `target` is its
    Request-URI. Never raises for what came with the request: a value that cannot be sent safely
    makes the reply a 400 (a 416 for a target that is not a sip/sips URI, a 414 for one too long
    for a Contact)."""
    if decision.reject:  # screening's rejection names its rules in its own Reason header
        return Reply(decision.code, decision.reason,
                     (("Reason", decision.reason_header or policy.reason_header(decision.code)),))
    target = (decision.divert_to or target or "").strip()  # a diverted call goes where screening says
    scheme = _SCHEME.match(target)
    if scheme is None or scheme.group(1).lower() not in ("sip", "sips"):
        return Reply(416, "Unsupported URI Scheme")
    edits = tuple(decision.add_headers)
    if any(_LINE_BREAKS.search(v) for _, v in edits):
        return Reply(400, "Bad Request")
    identity = tuple(h for h in edits if h[0] == "P-Asserted-Identity")
    for carried in (edits, identity, ()):  # all the edits if they fit, else the identities, else none
        try:
            uri = contact_uri(target, carried)
        except ValueError:
            return Reply(400, "Bad Request")
        if len(uri) <= MAX_CONTACT_URI:
            return Reply(302, "Moved Temporarily", edits, uri)
    return Reply(414, "Request-URI Too Long")


class RedirectApp(KemiApp):
    """The KEMI app of a redirect STI-VS (configuration "mode": "redirect"): answers every
    request itself, never relays. Built, reloaded and logged like KemiApp."""

    mode = "redirect"

    def _check_mode(self, config: Mapping[str, Any]) -> None:
        super()._check_mode(config)
        if config.get("next_hop") is not None:
            raise ConfigError('next_hop: a redirect server answers every INVITE and never relays; '
                              'remove next_hop (or use "mode": "relay")')

    def _route(self, ksr) -> int:
        method = ksr.pv.get("$rm")
        if method == "ACK":
            return 1  # never answered; sl has already absorbed the ACKs of this server's replies
        if ksr.pv.get("$tt"):
            self._reply(ksr, Reply(481, "Call/Transaction Does Not Exist"))
        elif method == "INVITE":
            self._redirect(ksr)
        elif method == "OPTIONS":
            self._reply(ksr, Reply(200, "OK", (("Allow", ALLOW),)))
        elif method == "CANCEL":
            self._reply(ksr, Reply(481, "Call/Transaction Does Not Exist"))
        else:
            self._reply(ksr, Reply(405, "Method Not Allowed", (("Allow", ALLOW),)))
        return 1

    def verify_invite(self, msg: Any) -> int:
        """For native kamailio.cfg routing: answer the INVITE; always -1 (a reply was sent)."""
        ksr = self.ksr
        try:
            self._redirect(ksr)
        except Exception:  # noqa: BLE001 — the worker must answer, whatever went wrong
            self._internal_error(ksr)
        return -1

    def _redirect(self, ksr) -> None:
        decision = self._decision(ksr)
        self._reply(ksr, redirect_reply(decision, ksr.pv.get("$ru"), self._setup.policy))

    @staticmethod
    def _reply(ksr, reply: Reply) -> None:
        if reply.contact is not None:
            ksr.pv.sets("$ru", reply.contact)  # sl lists the new Request-URI as a 3xx's Contact
        for name, value in reply.headers:
            ksr.hdr.append_to_reply(f"{name}: {value}\r\n")
        ksr.sl.sl_send_reply(reply.code, reply.phrase)
