"""manverify.sip.check(..., screen=): the MAN policy decides first, screening acts on the calls
that continue, and its action becomes the SIP Decision's (608 + Reason, a label header, Privacy,
a divert URI)."""
import json

import pytest

from manverify import sip
from manverify.policy import Decision, Policy
from manverify.screen.engine import Screen

from .conftest import NOW

ORIG, DEST = "+33612345678", "+33198765432"
OPEN = Policy(require_identity=False)  # unsigned calls continue (No-TN-Validation): screening decides


def invite(orig=ORIG, dest=DEST, *extra):
    lines = [f"INVITE sip:{dest}@proxy.example;user=phone SIP/2.0", "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1",
             f"From: <sip:{orig}@op.example;user=phone>;tag=a1", f"To: <tel:{dest}>", "Call-ID: c1",
             "CSeq: 1 INVITE", f"P-Asserted-Identity: <sip:{orig}@op.example;user=phone>", *extra, "Content-Length: 0"]
    return "\r\n".join(lines) + "\r\n\r\n"


def screen(**rules):
    config = {"rules": {"canvass.hours": {"enabled": False}, **rules}}
    return Screen.from_dict(config, reload=False)


def burst(limit=2, **more):
    return {"pattern.burst": {"limit": limit, "window": 60, **more}}


def test_without_a_screen_nothing_changes(verifier):
    d = sip.check(invite(), verifier, OPEN, now=NOW)
    assert d.action == "continue" and d.screening is None and d.divert_to is None
    assert d.to_dict()["screening"] is None
    # the two new fields come last, with defaults: positional Decisions built before still work
    assert Decision._fields[-2:] == ("screening", "divert_to")


def test_a_burst_is_rejected_with_608_and_a_reason_naming_the_rule(verifier):
    s = screen(**burst())
    codes = [sip.check(invite(), verifier, OPEN, now=NOW + i, screen=s) for i in range(4)]
    assert [d.action for d in codes] == ["continue", "continue", "reject", "reject"]
    d = codes[2]
    assert (d.code, d.reason, d.rule) == (608, "Rejected", "screening")
    assert d.reason_header == 'SIP;cause=608;text="pattern.burst"'
    assert d.add_headers == () and d.remove_headers == () and d.verstat is None
    assert d.screening.rules == ("pattern.burst",) and d.screening.values["pattern.burst"]["count"] == 3
    json.dumps(d.to_dict())  # JSON-ready, screening included
    assert d.to_dict()["screening"]["action"] == "reject"
    # the calls that continue carry the verification's edits and an "allow" screening
    assert codes[0].screening.action == "allow" and codes[0].verstat == "No-TN-Validation"
    assert ("P-Asserted-Identity", f"<sip:{ORIG}@op.example;user=phone;verstat=No-TN-Validation>") \
        in codes[0].add_headers


def test_603_when_configured(verifier):
    s = Screen.from_dict({"reject_code": 603, "rules": burst(1)}, reload=False)
    sip.check(invite(), verifier, OPEN, now=NOW, screen=s)
    d = sip.check(invite(), verifier, OPEN, now=NOW, screen=s)
    assert (d.code, d.reason, d.reason_header) == (603, "Decline", 'SIP;cause=603;text="pattern.burst"')


def test_the_man_policy_decides_first(verifier):
    """A call MAN rejects is answered with MAN's code and never reaches screening (nor its counts)."""
    s = screen(**burst(1))
    for _ in range(3):
        d = sip.check(invite(), verifier, Policy(), now=NOW, screen=s)  # no Identity: 428
        assert (d.action, d.code, d.screening) == ("reject", 428, None)
    assert s.stats()["calls"] == 0
    assert sip.check(invite(), verifier, OPEN, now=NOW, screen=s).action == "continue"  # the first it counts


def test_a_verified_call_is_screened_too(verifier, signer):
    s = screen(**burst(1))
    identity = f"Identity: {signer.sign(ORIG, DEST, iat=NOW)}"
    first = sip.check(invite(ORIG, DEST, identity), verifier, now=NOW, screen=s)
    second = sip.check(invite(ORIG, DEST, identity), verifier, now=NOW, screen=s)
    assert first.verstat == "TN-Validation-Passed" and first.screening.action == "allow"
    assert (second.action, second.code) == ("reject", 608)


def test_tag_adds_the_configured_header_with_the_label(verifier):
    s = Screen.from_dict({"tag_header": "X-Screening", "rules": {
        "canvass.hours": {"enabled": False}, "pattern.burst": {"limit": 1, "action": "tag", "label": "robocall"}}},
        reload=False)
    sip.check(invite(), verifier, OPEN, now=NOW, screen=s)
    d = sip.check(invite(), verifier, OPEN, now=NOW, screen=s)
    assert d.action == "continue" and ("X-Screening", "robocall") in d.add_headers
    assert d.screening.action == "tag" and d.screening.label == "robocall"
    assert d.verstat == "No-TN-Validation"  # the verification's own edits stay


def test_canvassing_numbers_are_tagged_by_default(verifier):
    d = sip.check(invite("+33162000001"), verifier, OPEN, now=NOW, screen=screen())
    assert d.action == "continue" and ("X-Call-Label", "canvassing") in d.add_headers
    assert "plan.canvassing" in d.screening.rules


def test_mask_withholds_the_number_as_the_policy_does(verifier):
    s = screen(**burst(1, action="mask"))
    first = sip.check(invite(), verifier, OPEN, now=NOW, screen=s)
    d = sip.check(invite(), verifier, OPEN, now=NOW, screen=s)
    assert not first.mask and ("Privacy", "id") not in first.add_headers
    assert d.action == "continue" and d.mask
    assert "Privacy" in d.remove_headers and d.add_headers.count(("Privacy", "id")) == 1


def test_mask_on_a_call_the_policy_masked_already_adds_nothing_twice(verifier):
    """International gateway, unauthenticated French mobile: the policy masks (rule 5) and
    screening's intl.fr-mobile (mask) fires on the same Result: one Privacy header."""
    d = sip.check(invite(), verifier, OPEN, entry="international", now=NOW, screen=screen())
    assert d.mask and d.add_headers.count(("Privacy", "id")) == 1
    assert "intl.fr-mobile" in d.screening.rules and d.screening.action == "mask"


def test_divert_carries_the_uri(verifier):
    s = Screen.from_dict({"divert_to": "sip:announcement@127.0.0.1:5090", "rules": {
        "canvass.hours": {"enabled": False}, **burst(1, action="divert")}}, reload=False)
    sip.check(invite(), verifier, OPEN, now=NOW, screen=s)
    d = sip.check(invite(), verifier, OPEN, now=NOW, screen=s)
    assert (d.action, d.divert_to, d.rule) == ("continue", "sip:announcement@127.0.0.1:5090", "screening")
    assert d.verstat == "No-TN-Validation"


def test_report_only_reports_without_acting(verifier):
    s = Screen.from_dict({"mode": "report-only", "rules": burst(1)}, reload=False)
    sip.check(invite(), verifier, OPEN, now=NOW, screen=s)
    d = sip.check(invite(), verifier, OPEN, now=NOW, screen=s)
    assert d.action == "continue" and d.screening.action == "allow"
    assert d.screening.reported == ("pattern.burst",) and d.rule == "identity-optional"


def test_the_called_number_is_screened(verifier):
    """pattern.flood counts per called number: many callers, one callee."""
    s = screen(**{"pattern.flood": {"limit": 2, "window": 60}})
    got = [sip.check(invite(f"+3361234567{i}"), verifier, OPEN, now=NOW, screen=s).action for i in range(4)]
    assert got == ["continue", "continue", "reject", "reject"]
    other = sip.check(invite(ORIG, "+33198765400"), verifier, OPEN, now=NOW, screen=s)
    assert other.action == "continue"


@pytest.mark.parametrize("orig", ["anonymous", "garbage<>", "+33" + "9" * 30])
def test_garbage_calling_numbers_get_a_decision(verifier, orig):
    d = sip.check(invite(orig), verifier, OPEN, now=NOW, screen=screen(**burst(1)))
    assert d.action in ("continue", "reject") and d.screening is not None


def test_the_request_uri_is_the_called_number_when_to_names_none(verifier):
    s = screen(**{"pattern.flood": {"limit": 1, "window": 60}})
    msg = invite().replace(f"To: <tel:{DEST}>", "To: <sip:bob@example.org>")
    assert sip.check(msg, verifier, OPEN, now=NOW, screen=s).action == "continue"
    d = sip.check(msg.replace(ORIG, "+33612345670"), verifier, OPEN, now=NOW, screen=s)
    assert d.action == "reject" and d.screening.rules == ("pattern.flood",)
