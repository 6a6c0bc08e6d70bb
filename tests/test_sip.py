"""manverify.sip: raw SIP requests (text, bytes, lines, mappings) to a Decision, never an exception."""
import email.utils

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manverify import sip
from manverify.errors import UsageError
from manverify.policy import Policy

from .conftest import NOW

ORIG, DEST = "+33612345678", "+33198765432"
PAI = f"P-Asserted-Identity: <sip:{ORIG}@op.example;user=phone>"
FROM = f"From: <sip:{ORIG}@op.example;user=phone>;tag=a1"
TO = f"To: <tel:{DEST}>"


@pytest.fixture(scope="module")
def good(signer):
    return signer.sign(ORIG, DEST, iat=NOW)


def request(*headers, ruri=f"sip:{DEST}@proxy.example;user=phone"):
    lines = [f"INVITE {ruri} SIP/2.0", "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1", "Call-ID: c1", "CSeq: 1 INVITE",
             *headers, "Content-Length: 0"]
    return "\r\n".join(lines) + "\r\n\r\nv=0\r\n"


def date(t=NOW):
    return "Date: " + email.utils.formatdate(t, usegmt=True)


def cases(good):
    tok, params = good.split(";", 1)
    bad_sig = good.replace(tok, tok[:-3] + ("AAA" if not tok.endswith("AAA") else "BBB"))
    return [
        # label, headers, expected (action, code)
        ("plain", [FROM, TO, PAI, f"Identity: {good}", date()], ("continue", None)),
        ("no PAI: From", [FROM, TO, f"Identity: {good}"], ("continue", None)),
        ("compact y and f/t", [f"f: <sip:{ORIG}@h>;tag=1", f"t: <tel:{DEST}>", f"y: {good}"], ("continue", None)),
        ("lower-case names", [FROM.lower(), TO, f"identity: {good}"], ("continue", None)),
        ("folded between params", [FROM, TO, f"Identity: {tok};\r\n   {params}"], ("continue", None)),
        ("several: garbage then good", [FROM, TO, "Identity: garbage", f"Identity: {good}"], ("continue", None)),
        ("duplicated", [FROM, TO, f"Identity: {good}", f"Identity: {good}"], ("continue", None)),
        ("two PAIs, second signed", [FROM, TO, "P-Asserted-Identity: <sip:+33199999999@h>",
                                     f"P-Asserted-Identity: <tel:{ORIG}>", f"Identity: {good}"], ("continue", None)),
        ("PAI comma list", [FROM, TO, f"P-Asserted-Identity: \"A, B\" <sip:+33199999999@h>, <tel:{ORIG}>",
                            f"Identity: {good}"], ("continue", None)),
        ("anonymous From, PAI", ["From: \"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=1", TO, PAI,
                                 f"Identity: {good}"], ("continue", None)),
        ("To not a number: R-URI", [FROM, "To: <sip:bob@example.org>", f"Identity: {good}"], ("continue", None)),
        ("no To: R-URI", [FROM, f"Identity: {good}"], ("continue", None)),
        ("no Identity", [FROM, TO, PAI], ("reject", 428)),
        ("empty Identity", [FROM, TO, PAI, "Identity:   "], ("reject", 428)),
        ("bad signature", [FROM, TO, PAI, f"Identity: {bad_sig}"], ("reject", 438)),
        ("wrong caller", [f"From: <sip:+33700000000@h>;tag=1", TO, f"Identity: {good}"], ("reject", 438)),
        ("wrong callee", [FROM, "To: <tel:+33100000000>", f"Identity: {good}"], ("reject", 438),
         "sip:+33100000000@proxy.example;user=phone"),
        ("To differs, R-URI signed", [FROM, "To: <tel:+33100000000>", f"Identity: {good}"], ("continue", None)),
        ("stale Date", [FROM, TO, f"Identity: {good}", date(NOW - 600)], ("reject", 403)),
        ("bad Date", [FROM, TO, f"Identity: {good}", "Date: yesterday"], ("reject", 400)),
        ("anonymous, no PAI", ["From: <sip:anonymous@anonymous.invalid>;tag=1", TO, f"Identity: {good}"],
         ("reject", 400)),
        ("no From, no PAI", [TO, f"Identity: {good}"], ("reject", 400)),
        ("oversized", [FROM, TO, "Identity: " + "A" * 9000 + ".B.C;info=<https://x/y>;alg=ES256;ppt=shaken"],
         ("reject", 438)),
        ("non-ASCII", [FROM, TO, "Identity: é.é.é;info=<https://x/y>;alg=ES256;ppt=shaken"], ("reject", 438)),
    ]


def test_table(good, verifier):
    for label, headers, (action, code), *ruri in cases(good):
        d = sip.check(request(*headers, **({"ruri": ruri[0]} if ruri else {})), verifier, now=NOW)
        assert (d.action, d.code) == (action, code), f"{label}: {d.detail}"
        if action == "continue":
            assert d.verstat == "TN-Validation-Passed", label
            assert ("P-Asserted-Identity" in {n for n, _ in d.add_headers}), label


def test_inputs_of_every_shape(good, verifier):
    text = request(FROM, TO, f"Identity: {good}")
    lines = text.split("\r\n\r\n")[0].split("\r\n")
    shapes = [text, text.encode(), lines, [line.encode() for line in lines], text.replace("\r\n", "\n"),
              {"From": FROM[6:], "To": TO[4:], "Identity": [good]}, {"f": FROM[6:], "t": TO[4:], "y": good.encode()}]
    for shape in shapes:
        assert sip.check(shape, verifier, now=NOW).verstat == "TN-Validation-Passed", type(shape)


def test_parse_picks_the_fields(good):
    req = sip.parse(request(FROM, TO, "P-Asserted-Identity: <sip:+33111111111@h>, <tel:+33222222222>",
                            f"Identity: {good}", "y: second", date(), "P-Identity-Bypass: tok123 "))
    assert req.method == "INVITE" and req.ruri.startswith(f"sip:{DEST}@")
    assert req.identity == (good, "second")
    assert req.pai == ("<sip:+33111111111@h>", "<tel:+33222222222>") and not req.problem
    assert req.from_.startswith("<sip:") and req.to == f"<tel:{DEST}>" and req.bypass == "tok123"
    assert req.date.endswith("GMT")
    assert [n for _, n in sip.calling_candidates(req)] == ["33111111111", "33222222222", "33612345678"]
    assert [n for _, n in sip.called_candidates(req)] == ["33198765432"]
    assert sip.parse(request("Content-Type: application/sdp")).identity == ()
    # The body is never read as headers.
    assert sip.parse("INVITE sip:a@b SIP/2.0\r\nFrom: <sip:1@h>\r\n\r\nIdentity: body\r\n").identity == ()


def test_bypass_reaches_the_policy(verifier):
    raw = request(FROM, TO, "P-Identity-Bypass: outage-42")
    d = sip.check(raw, verifier, now=NOW)
    assert d.reject and d.code == 428 and d.bypass == "outage-42"
    d = sip.check(raw, verifier, Policy(accept_bypass=True), now=NOW)
    assert not d.reject and d.bypass_accepted and d.verstat == "No-TN-Validation"


def test_header_edits(good, verifier):
    d = sip.check(request(FROM, TO, "P-Asserted-Identity: \"Op\" <sip:+33612345678@h;user=phone;verstat=TN-Validation-Passed>",
                          "Identity: x"), verifier, Policy(role="monitoring"), now=NOW)
    assert d.remove_headers == ("P-Asserted-Identity",)
    assert d.add_headers == (
        ("P-Asserted-Identity", '"Op" <sip:+33612345678@h;user=phone;verstat=TN-Validation-Failed>'),
        ("Reason", 'SIP;cause=438;text="Invalid Identity Header"'))
    # No PAI: one is added from From (without its tag); From itself is left alone.
    d = sip.check(request(FROM, TO, f"Identity: {good}"), verifier, now=NOW)
    assert d.remove_headers == ()
    assert d.add_headers == (("P-Asserted-Identity", f"<sip:{ORIG}@op.example;user=phone;verstat=TN-Validation-Passed>"),)
    # International 06 without authentication: masked.
    d = sip.check(request(FROM, TO, PAI), verifier, entry="international", now=NOW)
    assert d.mask and ("Privacy", "id") in d.add_headers and "Privacy" in d.remove_headers
    assert sip.check(request(FROM, TO, PAI), verifier, Policy(role="transit"), now=NOW).add_headers == ()


@pytest.mark.parametrize("value, expected", [
    ("<tel:+33612345678>", "<tel:+33612345678;verstat=V>"),
    ("sip:+33612345678@h;user=phone", "<sip:+33612345678@h;user=phone;verstat=V>"),
    ('"A" <sip:+33612345678@h;verstat=TN-Validation-Passed;user=phone>', '"A" <sip:+33612345678@h;user=phone;verstat=V>'),
    ("<sip:+33612345678@h?X-A=1>", "<sip:+33612345678@h;verstat=V?X-A=1>"),
])
def test_with_verstat(value, expected):
    assert sip.with_verstat(value, "V") == expected


@pytest.mark.parametrize("value, anonymous", [
    ("<sip:anonymous@anonymous.invalid>;tag=1", True), ('"Anonymous" <sip:+33612345678@b>', False),
    ('"Anonymous" <sip:anonymous@b>', True), ("Anonymous", True),
    ("<sip:+33612345678@h>", False), ("<tel:restricted>", True), (None, False), ("", False),
])
def test_is_anonymous(value, anonymous):
    assert sip.is_anonymous(value) is anonymous


def test_transit_checks_presence_and_format_only(good, verifier):
    p = Policy(role="transit", reject_malformed=True)
    # Format only: a wrong caller and a stale token still pass through a transit proxy.
    assert not sip.check(request("From: <sip:+33700000000@h>;tag=1", TO, f"Identity: {good}"), verifier, p,
                         now=NOW + 3600).reject
    assert sip.check(request(FROM, TO), verifier, p).code == 428
    assert sip.check(request(FROM, TO, "Identity: a.b"), verifier, p).code == 438
    assert sip.check_format([good]).ok


def test_integrator_mistakes_raise_usage_error(verifier):
    for bad in (42, None, [1, 2], {"From": 3}, {1: "x"}):
        with pytest.raises(UsageError):
            sip.check(bad, verifier)


def test_limits(good, verifier):
    many = [f"X-H{i}: v" for i in range(sip.MAX_FIELDS + 5)]
    assert sip.check(request(FROM, TO, f"Identity: {good}", *many), verifier, now=NOW).code == 400
    huge = request(FROM, TO, "X-Big: " + "a" * (sip.MAX_HEADER_BLOCK + 10))
    assert sip.check(huge, verifier, now=NOW).code == 400


# ---------------------------------------------------------------------- never raises
header_names = st.sampled_from(["Identity", "y", "From", "f", "To", "t", "P-Asserted-Identity", "Date",
                                "P-Identity-Bypass", "X-Other"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.tuples(header_names, st.text(max_size=200)), max_size=12),
       first=st.text(max_size=80))
def test_never_raises_on_text(verifier, lines, first):
    raw = first + "\r\n" + "\r\n".join(f"{n}: {v}" for n, v in lines)
    d = sip.check(raw, verifier, now=NOW)
    assert d.action in ("continue", "reject")
    d = sip.check({n: v for n, v in lines}, verifier, Policy(role="monitoring"), entry="international", now=NOW)
    assert d.action == "continue"
    assert not any("\r" in v or "\n" in v for _, v in d.add_headers)  # header edits are one line each


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2000))
def test_never_raises_on_bytes(verifier, data):
    assert sip.check(data, verifier, now=NOW).action in ("continue", "reject")
    assert sip.check(b"INVITE sip:1@h SIP/2.0\r\nIdentity: " + data, verifier, now=NOW).action in ("continue", "reject")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=2000), junk=st.binary(max_size=40))
def test_never_raises_on_damaged_real_requests(verifier, good, cut, junk):
    raw = request(FROM, TO, PAI, f"Identity: {good}", date()).encode()
    cut = cut % (len(raw) + 1)
    d = sip.check(raw[:cut] + junk + raw[cut:], verifier, now=NOW)
    assert d.action in ("continue", "reject")


def test_decision_edits_are_next_to_each_other():
    """sip._with_edits rebuilds a Decision by position: the two edit fields must stay adjacent,
    and every field after them (screening's, added later) keeps its value."""
    from manverify.policy import Decision

    i = Decision._fields.index("remove_headers")
    assert Decision._fields[i:i + 2] == ("remove_headers", "add_headers")
    d = Decision("continue", None, "", "TN-Validation-Passed", screening="s", divert_to="sip:x")
    e = sip._with_edits(d, sip.parse([PAI]), [ORIG[1:]], ORIG[1:])
    assert e.remove_headers == ("P-Asserted-Identity",) and (e.screening, e.divert_to) == ("s", "sip:x")


# ---------------------------------------------------------------------- verstat per identity
def _pai_edits(d):
    return [v for n, v in d.add_headers if n == "P-Asserted-Identity"]


def test_passed_only_on_the_identity_the_passport_signed(good, verifier):
    """3GPP TS 24.229 §7.2A.20: verstat reports on the number of the URI carrying it. An unsigned
    first PAI must not come out TN-Validation-Passed beside the signed one."""
    unsigned = "<sip:+33199999999@h;user=phone;verstat=TN-Validation-Passed>"  # upstream verstat: removed
    d = sip.check(request(FROM, TO, f"P-Asserted-Identity: {unsigned}", f"P-Asserted-Identity: <tel:{ORIG}>",
                          f"Identity: {good}"), verifier, now=NOW)
    assert d.verstat == "TN-Validation-Passed" and d.remove_headers == ("P-Asserted-Identity",)
    assert _pai_edits(d) == ["<sip:+33199999999@h;user=phone>", f"<tel:{ORIG};verstat=TN-Validation-Passed>"]
    # A sip and a tel URI of the signed number (RFC 3325 §9.1) both carry it; so does the
    # suffixed form.
    d = sip.check(request(FROM, TO, f"P-Asserted-Identity: <sip:{ORIG}@h;user=phone>, <tel:+33 6 12 34 56 78>",
                          f"Identity: {good}"), verifier, Policy(verstat_attest=True), now=NOW)
    assert _pai_edits(d) == [f"<sip:{ORIG}@h;user=phone;verstat=TN-Validation-Passed-A>",
                             "<tel:+33 6 12 34 56 78;verstat=TN-Validation-Passed-A>"]
    # An identity that is not a number carries no verstat.
    d = sip.check(request(FROM, TO, "P-Asserted-Identity: <sip:alice@h;verstat=TN-Validation-Passed>", PAI,
                          f"Identity: {good}"), verifier, now=NOW)
    assert _pai_edits(d) == ["<sip:alice@h>", f"<sip:{ORIG}@op.example;user=phone;verstat=TN-Validation-Passed>"]


@pytest.mark.parametrize("headers, policy, verstat", [
    (["Identity: garbage"], Policy(role="monitoring"), "TN-Validation-Failed"),
    ([], Policy(role="monitoring"), "No-TN-Validation"),
    (["P-Identity-Bypass: outage-1"], Policy(accept_bypass=True), "No-TN-Validation"),
    (["Identity: garbage"], Policy(), None),  # rejected: no edits at all
])
def test_failed_and_unvalidated_on_every_number(verifier, headers, policy, verstat):
    """No number was validated: each PAI that is a number says so; one that is not a number says
    nothing (verstat is a tel URI parameter); an upstream Passed never survives."""
    d = sip.check(request(FROM, TO, f"P-Asserted-Identity: <sip:{ORIG}@h;verstat=TN-Validation-Passed>",
                          "P-Asserted-Identity: <sip:alice@h;verstat=TN-Validation-Passed>", *headers),
                  verifier, policy, now=NOW)
    if verstat is None:
        assert d.reject and d.add_headers == ()
        return
    assert _pai_edits(d) == [f"<sip:{ORIG}@h;verstat={verstat}>", "<sip:alice@h>"]


def test_more_than_two_pai_values_are_a_bad_request(good, verifier):
    three = [PAI, "P-Asserted-Identity: <tel:+33199999999>, <sip:+33188888888@h>"]
    d = sip.check(request(FROM, TO, *three, f"Identity: {good}"), verifier, now=NOW)
    assert (d.code, d.detail) == (400, "malformed request: more than 2 P-Asserted-Identity values "
                                       "(RFC 3325 §9.1 allows two)")
    # Empty list elements are not values.
    d = sip.check(request(FROM, TO, f"P-Asserted-Identity: , <tel:{ORIG}>,, ", f"Identity: {good}"), verifier, now=NOW)
    assert not d.reject and _pai_edits(d) == [f"<tel:{ORIG};verstat=TN-Validation-Passed>"]


@pytest.mark.parametrize("name, value, folded", [
    ("From", f"<sip:{ORIG}@h>;tag=1\r\nX-Injected: 1", f"<sip:{ORIG}@h>\r\n ;tag=1"),
    ("P-Asserted-Identity", f"<sip:{ORIG}@h>\nX-Injected: 1", f"\"A\"\r\n\t<sip:{ORIG}@h>"),
    ("P-Asserted-Identity", f"<sip:{ORIG}@h>\rX-Injected: 1", f"\"A\"\n <sip:{ORIG}@h>"),
    ("X-Other", "a\r\nb", "a\r\n b"),
])
def test_line_breaks_in_parsed_values_are_refused(good, verifier, name, value, folded):
    """A mapping's values come back inside add_headers: a line break there would let the caller
    add headers at the next hop. Folding (a line break, then blanks) is still unfolded."""
    headers = {"From": f"<sip:{ORIG}@h>;tag=1", "To": f"<tel:{DEST}>", "Identity": good, name: value}
    d = sip.check(headers, verifier, now=NOW)
    assert (d.code, d.detail) == (400, f"malformed request: header {name!r} has a line break (CR or LF) in its value")
    d = sip.check(headers, verifier, Policy(role="monitoring"), now=NOW)
    assert all("\r" not in v and "\n" not in v for _, v in d.add_headers)
    d = sip.check(dict(headers, **{name: folded}), verifier, now=NOW)
    assert not d.reject and all("\r" not in v and "\n" not in v for _, v in d.add_headers)


def test_mapping_limits_count_the_whole_request(good, verifier):
    big = {"From": f"<sip:{ORIG}@h>", "To": f"<tel:{DEST}>", "Identity": good,
           "X-A": "a" * (sip.MAX_HEADER_BLOCK // 2), "X-B": "b" * (sip.MAX_HEADER_BLOCK // 2)}
    assert sip.check(big, verifier, now=NOW).detail == (
        f"malformed request: header fields longer than {sip.MAX_HEADER_BLOCK} characters in all")
    folded = {"From": f"<sip:{ORIG}@h>", "To": f"<tel:{DEST}>", "Identity": good, "X-A": "a\r\n b" * sip.MAX_FIELDS}
    assert sip.check(folded, verifier, now=NOW).detail == f"malformed request: more than {sip.MAX_FIELDS} header lines"


# ---------------------------------------------------------------------- sip.check and verify() agree
_CALLING_FORMS = ["+33612345678", "tel:+33-6-12-34-56-78", "tel:0612345678;phone-context=+33",
                  "sip:0612345678;phone-context=ims.example.fr@h;user=phone", "tel:+0612345678",
                  "sip:+0612345678@h", "tel:+0033612345678", "tel:+0590123456", "tel:000612345678"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(form=st.one_of(st.sampled_from(_CALLING_FORMS),
                      st.builds("{}{}{}".format, st.sampled_from(["tel:", "sip:"]),
                                st.sampled_from(["", "+", "+0", "00", "+00", "0"]),
                                st.sampled_from(["612345678", "33612345678", "0612345678", "590123456"]))))
def test_sip_check_and_verify_agree_on_the_calling_number(good, verifier, form):
    """sip.check canonicalises the calling number and verify() canonicalises it again: the
    verdict must be the one verify() gives for the number as the call presents it."""
    uri = form if form.startswith("tel:") or "@" in form else form + "@h"
    d = sip.check(request(f"From: <{uri}>;tag=1", TO, f"Identity: {good}"), verifier, now=NOW)
    direct = verifier.verify(good, orig=f"<{uri}>", dest=f"<tel:{DEST}>", now=NOW)
    assert (d.result.ok, d.result.sip_code) == (direct.ok, direct.sip_code), (d.detail, direct.detail)


@pytest.mark.parametrize("value", ["A" * 9000 + ".B.C;info=<https://x/y>;alg=ES256;ppt=shaken",
                                   "é.é.é;info=<https://x/y>;alg=ES256;ppt=shaken"], ids=["oversized", "non-ASCII"])
def test_transit_judges_header_text_as_the_verifier_does(verifier, value):
    """One rule for an acceptable Identity value (size, ASCII): the transit role's format check
    gives the verifier's own verdict and words."""
    transit = sip.check_format([value])
    verified = verifier.verify(value, orig=ORIG, dest=DEST, now=NOW)
    assert (transit.sip_code, transit.detail) == (verified.sip_code, verified.detail) == (438, verified.detail)


def test_every_request_is_counted_once_whatever_was_tried(good, verifier):
    # A PASSporT signed for the second PAI is verified twice (first with the first PAI); a request
    # that cannot be read is answered before any verification; a transit hop verifies nothing.
    from manverify import Verifier

    v = Verifier(store=verifier.store)
    retried = request(FROM, TO, "P-Asserted-Identity: <sip:+33199999999@h>", f"P-Asserted-Identity: <tel:{ORIG}>",
                      f"Identity: {good}")
    assert not sip.check(retried, v, now=NOW).reject
    assert sip.check({"From": "<sip:+33612345678@h>\r\nX-Injected: 1", "Identity": good}, v, now=NOW).code == 400
    assert sip.check(retried, v, Policy(role="transit"), now=NOW).code is None
    s = v.stats()
    assert (s["calls"], s["passed"], s["failed"], s["by_code"]) == (2, 1, 1, {"400": 1})


def _forms(good, signer):
    """(label, Identity value): headers whose form the verifier judges, each differing in one way."""
    tok, params = good.split(";", 1)
    info = params.split(">", 1)[0] + ">"
    c = {"attest": "A", "dest": {"tn": ["33198765432"]}, "iat": NOW, "orig": {"tn": "33612345678"}, "origid": "x"}
    jose = signer._jose("shaken")
    return [
        ("as signed", good),
        ("alg RS256", f"{tok};{info};alg=RS256;ppt=shaken"),
        ("unknown parameter", f"{good};foo=bar"),
        ("no alg", f"{tok};{info};ppt=shaken"),
        ("no ppt", f"{tok};{info};alg=ES256"),
        ("no alg, no ppt", f"{tok};{info}"),
        ("no info", f"{tok};alg=ES256;ppt=shaken"),
        ("ppt div", f"{tok};{info};alg=ES256;ppt=div"),
        ("ppt rph", f"{tok};{info};alg=ES256;ppt=rph"),
        ("other info", f"{tok};info=<https://certs.example.fr/other.pem>;alg=ES256;ppt=shaken"),
        ("info with ESC", f"{tok};info=<https://x/\x1b[2J>;alg=ES256;ppt=shaken"),
        ("compact", f"..{tok.split('.')[2]};{info};alg=ES256;ppt=shaken"),
        ("two tokens parts", f"{tok.rsplit('.', 1)[0]};{params}"),
        ("PASSporT alg HS256", signer.sign_claims(c, header={**jose, "alg": "HS256"})),
        ("PASSporT crit", signer.sign_claims(c, header={**jose, "crit": ["x"]})),
        ("attest D", signer.sign_claims({**c, "attest": "D"})),
        ("iat 2^64", signer.sign_claims({**c, "iat": 2 ** 64})),
        ("iat a string", signer.sign_claims({**c, "iat": str(NOW)})),
    ]


@pytest.mark.parametrize("profile", ["man", "atis", "rfc"])
def test_transit_judges_the_form_as_the_verifier_does(good, signer, lab, profile):
    """One set of rules for a header's form: the transit role refuses what the verifier refuses on
    form, with the same code and words, and lets through what the verifier judges further."""
    from manverify import Verifier

    v = Verifier(trust_anchors=[lab.root.pem], certificates={lab.x5u: lab.chain_pem}, profile=profile, fetch=False)
    transit = Policy(role="transit", reject_malformed=True)
    for label, value in _forms(good, signer):
        verified = v.verify(value, orig=ORIG, dest=DEST, now=NOW)
        d = sip.check(request(FROM, TO, f"Identity: {value}"), v, transit, now=NOW)
        if verified.ok:
            assert d.result.ok, (label, d.result.detail)
        elif verified.sip_code in (403, 436, 437, 438) and not d.result.ok:
            assert (d.result.sip_code, d.result.detail) == (verified.sip_code, verified.detail), label
        else:  # the verifier refused it for what transit does not judge: a certificate or the call
            assert d.result.ok and verified.detail.startswith(("certificate", "signer certificate", "x5u", "compact form needs")), \
                (label, verified.detail)


def test_numbers_to_check(signer):
    from manverify.checks import numbers_to_check

    a, b, c = "33612345678", "33611111111", "33198765432"
    token = signer.sign(b, c)  # signed for the second calling number
    assert numbers_to_check([token], [a, b], [c]) == (b, c)
    assert numbers_to_check([token], [a], [c]) == (a, c)  # one number a side: nothing looked at
    assert numbers_to_check([token], ["tel:+33 6 11 11 11 11", a], ["x", c]) == ("tel:+33 6 11 11 11 11", c)
    assert numbers_to_check(["garbage", token], [a, b], ["x", "33100000000", c]) == (b, c)
    assert numbers_to_check([signer.sign(a, "33100000000")], [b, a], [c, "33100000000"]) == (a, "33100000000")
    assert numbers_to_check(None, [a, b], [c, "33100000000"]) == (a, c)  # no token: the first of each
    assert numbers_to_check([token], ["anonymous"], ["bob"]) == ("anonymous", "bob")  # no number: the first value
    assert numbers_to_check([token], [], []) == (None, None)
    assert numbers_to_check(42, [a, b], [c]) == (a, c)  # not call data: the verifier says so
