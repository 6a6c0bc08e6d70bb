"""The redirect STI-VS (manverify.integrations.redirect): the Contact it builds from request
values, and RedirectApp against the recording fake of Kamailio's KSR (no processes)."""
import re
import time
import urllib.parse

import pytest

from manverify.errors import ConfigError
from manverify.integrations.kamailio import KemiApp
from manverify.integrations.redirect import MAX_CONTACT_URI, RedirectApp, contact_uri, escape_header, redirect_reply
from manverify.policy import CONTINUE, Decision, Policy
from manverify.result import Result

from .test_kemi_handler import DEST, ORIG, FakeKSR, invite

RURI = f"sip:{DEST}@sbc.example;user=phone"
# What RFC 3261 §25.1 lets an hvalue hold unescaped, and an escape.
HVALUE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|%[0-9A-F]{2})*\Z")


# ---------------------------------------------------------------------- the Contact
def test_contact_carries_the_edits_as_escaped_uri_headers():
    pai = f"<sip:{ORIG}@h;user=phone;verstat=TN-Validation-Passed>"
    uri = contact_uri(RURI, [("P-Asserted-Identity", pai)])
    assert uri == (f"{RURI}?P-Asserted-Identity=%3Csip:%2B{ORIG[1:]}%40h%3Buser%3Dphone"
                   "%3Bverstat%3DTN-Validation-Passed%3E")
    name, _, escaped = uri.partition("?")[2].partition("=")
    assert (name, urllib.parse.unquote(escaped)) == ("P-Asserted-Identity", pai)


def test_contact_without_edits_is_the_target():
    assert contact_uri(RURI, []) == RURI


@pytest.mark.parametrize("value", [
    '"Eve" <sip:+33612345678@h>;x=1?a=b&Evil=1',
    "<sip:+33612345678@h>\r\nEvil: injected",
    "<sip:x@h>\nVia: SIP/2.0/UDP 6.6.6.6",
    "100% <sip:é@h>\x00 \t",
    "\udcff lone surrogate",
])
def test_header_values_cannot_leave_their_uri_header(value):
    escaped = escape_header(value)
    assert HVALUE.match(escaped), escaped
    assert urllib.parse.unquote(escaped, errors="surrogatepass") == value
    built = contact_uri(RURI, [("P-Asserted-Identity", value), ("Reason", value)])
    assert built == f"{RURI}?P-Asserted-Identity={escaped}&Reason={escaped}"


@pytest.mark.parametrize("target", [
    f"sip:{DEST}@h>;evil=1", f"sip:{DEST}@h\r\nEvil: x", f"sip:{DEST}@h?Route=x", f'sip:"{DEST}"@h',
    f"sip:{DEST}@h x", "sip:", "tel:+33198765432",
])
def test_a_target_that_cannot_be_carried_unchanged_is_refused(target):
    with pytest.raises(ValueError):
        contact_uri(target, [])


# ---------------------------------------------------------------------- the reply
def _continue(verstat, *add):
    return Decision(CONTINUE, None, "", verstat)._replace(add_headers=tuple(add))


def test_reply_to_a_continuing_call_is_a_302_with_the_edits_twice():
    pai = ("P-Asserted-Identity", f"<sip:{ORIG}@h;verstat=TN-Validation-Failed>")
    reason = ("Reason", 'SIP;cause=438;text="Invalid Identity Header"')
    reply = redirect_reply(_continue("TN-Validation-Failed", pai, reason), RURI, Policy())
    assert reply == (302, "Moved Temporarily", (pai, reason), contact_uri(RURI, [pai, reason]))
    assert reply.contact.endswith("&Reason=SIP%3Bcause%3D438%3Btext%3D%22Invalid%20Identity%20Header%22")


def test_contact_keeps_within_what_kamailio_prints():
    pai = ("P-Asserted-Identity", f'"{"N" * 200}" <sip:{ORIG}@h;verstat=TN-Validation-Failed>')
    reason = ("Reason", 'SIP;cause=438;text="' + "x" * 250 + '"')
    reply = redirect_reply(_continue("TN-Validation-Failed", pai, reason), RURI, Policy())
    assert reply.contact == contact_uri(RURI, [pai]) and reply.headers == (pai, reason)
    reply = redirect_reply(_continue("TN-Validation-Failed", ("P-Asserted-Identity", "x" * 500)), RURI, Policy())
    assert reply.contact == RURI and reply.code == 302
    long_target = RURI + ";x=" + "y" * MAX_CONTACT_URI
    assert redirect_reply(_continue("TN-Validation-Passed"), long_target, Policy())[:2] == (414, "Request-URI Too Long")
    assert len("Contact: <%s>\r\n " % ("s" * MAX_CONTACT_URI)) < 512


def test_reply_to_a_rejected_call_is_its_code_with_a_reason_header():
    reject = Policy().decide(Result(ok=False, sip_code=438, detail="forged"))
    reason = ("Reason", 'SIP;cause=438;text="Invalid Identity Header"')
    assert redirect_reply(reject, RURI, Policy()).headers == (reason,)
    assert redirect_reply(reject, RURI, Policy(reason_protocol="STIR"))[:2] == (438, "Invalid Identity Header")
    assert redirect_reply(reject, RURI, Policy(reason_protocol="STIR")).headers[0][1].startswith("STIR;cause=438")


def test_bad_targets_and_values_are_answered_not_carried():
    ok = _continue("TN-Validation-Passed")
    assert redirect_reply(ok, "tel:+33198765432", Policy())[:2] == (416, "Unsupported URI Scheme")
    assert redirect_reply(ok, None, Policy()).code == 416
    assert redirect_reply(ok, f"sip:{DEST}@h>x", Policy()).code == 400
    broken = _continue("TN-Validation-Passed", ("P-Asserted-Identity", "<sip:x@h>\r\nEvil: 1"))
    assert redirect_reply(broken, RURI, Policy()) == (400, "Bad Request", (), None)


# ---------------------------------------------------------------------- RedirectApp
@pytest.fixture
def app(verifier):
    return RedirectApp({"mode": "redirect", "trust_anchors": ["unused"]}, verifier_factory=lambda config: verifier)


def _route(app, message, **pvs):
    ksr = FakeKSR(message, pvs=dict({"$ru": RURI}, **pvs))
    app._ksr = ksr
    assert app.ksr_request_route(None) == 1
    assert "tm.t_relay" not in ksr.names()  # never relays
    replies = [args for name, args in ksr.calls if name == "sl.sl_send_reply"]
    added = [args[0] for name, args in ksr.calls if name == "hdr.append_to_reply"]
    assert len(replies) == 1, ksr.calls
    return ksr, replies[0], added


def test_verified_invite_is_redirected_with_verstat(app, signer_at):
    # dated by the wall clock the handler judges by (the signer fixture's NOW goes stale in a minute)
    ksr, reply, added = _route(app, invite(f"Identity: {signer_at(time.time()).sign(ORIG, DEST)}"))
    assert reply == (302, "Moved Temporarily")
    assert ("pv.sets", ("$ru", f"{RURI}?P-Asserted-Identity=%3Csip:%2B33612345678%40h"
                               "%3Bverstat%3DTN-Validation-Passed%3E")) in ksr.calls
    assert added == [f"P-Asserted-Identity: <sip:{ORIG}@h;verstat=TN-Validation-Passed>\r\n"]


def test_masked_international_call_carries_privacy_in_the_contact(verifier):
    app = RedirectApp({"mode": "redirect", "trust_anchors": ["unused"], "international_sources": ["198.51.100.0/24"]},
                      verifier_factory=lambda config: verifier)
    ksr, reply, added = _route(app, invite(f"P-Asserted-Identity: <sip:{ORIG}@h>"), **{"$si": "198.51.100.7"})
    assert reply == (302, "Moved Temporarily")
    assert "Privacy: id\r\n" in added and 'Reason: SIP;cause=428;text="Use Identity Header"\r\n' in added
    (uri,), = [args[1:] for name, args in ksr.calls if name == "pv.sets"]
    assert uri.endswith("&Privacy=id") and "verstat%3DNo-TN-Validation%3E&Reason=SIP%3Bcause%3D428" in uri


def test_failed_invite_is_rejected_with_code_and_reason(app):
    ksr, reply, added = _route(app, invite())
    assert "pv.sets" not in ksr.names()
    assert reply == (428, "Use Identity Header")
    assert added == ['Reason: SIP;cause=428;text="Use Identity Header"\r\n']


@pytest.mark.parametrize("pvs, code", [
    ({"$rm": "OPTIONS"}, 200), ({"$rm": "BYE"}, 405), ({"$rm": "REGISTER"}, 405), ({"$rm": "CANCEL"}, 481),
    ({"$rm": "BYE", "$tt": "x"}, 481), ({"$rm": "INVITE", "$tt": "x"}, 481), ({"$rm": "OPTIONS", "$tt": "x"}, 481),
])
def test_other_requests_are_answered(app, pvs, code):
    _, reply, added = _route(app, None, **pvs)
    assert reply[0] == code
    assert ("Allow: INVITE, ACK, CANCEL, OPTIONS\r\n" in added) == (code in (200, 405))


def test_ack_is_absorbed(app):
    ksr = FakeKSR(None, pvs={"$rm": "ACK"})
    app._ksr = ksr
    assert app.ksr_request_route(None) == 1
    assert not any(name.startswith(("sl.", "tm.", "hdr.")) for name, _ in ksr.calls)


def test_internal_error_answers_500(app):
    ksr = FakeKSR(invite(), pvs={"$ru": RURI}, fail_on="hdr.append_to_reply")
    app._ksr = ksr
    assert app.ksr_request_route(None) == 1
    assert ("sl.sl_send_reply", (500, "Server Internal Error")) in ksr.calls
    ksr = FakeKSR(invite(), pvs={"$ru": RURI}, fail_on="hdr.append_to_reply")
    app._ksr = ksr
    assert app.verify_invite(None) == -1 and ("sl.sl_send_reply", (500, "Server Internal Error")) in ksr.calls


@pytest.mark.parametrize("cls, config", [
    (RedirectApp, {"trust_anchors": ["x"]}),  # a relay's configuration
    (RedirectApp, {"trust_anchors": ["x"], "mode": "redirect", "next_hop": "sip:127.0.0.1:5080"}),
    (KemiApp, {"trust_anchors": ["x"], "mode": "redirect"}),  # would relay what should be redirected
    (KemiApp, {"trust_anchors": ["x"], "mode": "proxy"}),
])
def test_a_configuration_for_the_other_mode_is_refused(cls, config, verifier):
    with pytest.raises(ConfigError):
        cls(config, verifier_factory=lambda c: verifier)
