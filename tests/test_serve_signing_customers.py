"""Attestation from the customer: `manverify serve` maps API keys to customers and signs A only for a
number the customer may show; any other number, an outbound rule that acts, a key of no customer:
403 {"error", "rules"}, never a signature (or B with signer.unauthorised "sign-b"). Over real HTTP
(both dialects, the inline and the ASGI paths, local counters and a real redis-server), the
configuration's mistakes, and the same decision from the Python API for Signer users."""
import time

import pytest

from manverify import passport
from manverify.errors import ConfigError
from manverify.screen.engine import Screen
from manverify.serve import settings
from manverify.signer import Signer

from .redishelp import redis_server  # noqa: F401 - fixture
from .servehelp import Service

pytest.importorskip("uvicorn", reason="uvicorn (extra manverify[serve], Python >= 3.10) is not installed")

SIGN, VERIFY = "/stir/v1/signing", "/stir/v1/verification"
ACME_KEY, BANK_KEY, PLAIN_KEY = "acme-" + "a" * 24, "bank-" + "b" * 24, "plain-" + "c" * 24
ACME_NUMBER, BANK_NUMBER, OTHER = "+33140000001", "+33140000002", "+33140000099"
PERSON, OPPOSED = "+33698765432", "+33611111111"


def customers_config(config, redis_url=None, unauthorised=None):
    config["server"]["api_keys"] = [{"key": ACME_KEY, "customer": "acme"}, {"key": BANK_KEY, "customer": "bank"},
                                    PLAIN_KEY]
    config["screening"] = {"customers": {
        # not canvassers: the tests run at any hour, and canvass.hours would refuse nights and weekends
        "acme": {"numbers": ["0140000000-0140000001"], "opposition": ["bloctel.txt"]},
        "bank": {"numbers": ["01 40 00 00 02"]},
    }}
    if redis_url:
        config["screening"]["counters"] = {"backend": "redis", "url": redis_url, "key_secret": "k" * 32,
                                           "budget_ms": 500}
    if unauthorised:
        config["signer"]["unauthorised"] = unauthorised


def configured(directory, **kw) -> Service:
    """The service with customers, not started: `with configured(...) as s` starts and stops it."""
    (directory / "bloctel.txt").write_text(f"# Bloctel extract\n{OPPOSED}\n")
    return Service(directory, lambda c: customers_config(c, **kw), workers=1)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with configured(tmp_path_factory.mktemp("serve-customers")) as s:
        yield s


def atis(service, key, orig, dests, attest="A"):
    return service.request("POST", SIGN, {"signingRequest": {
        "attest": attest, "orig": {"tn": orig}, "dest": {"tn": dests}, "iat": int(time.time()),
        "origid": "123e4567-e89b-12d3-a456-426655440000"}}, auth=key)


def ms(service, key, orig, dests, attest="A"):
    return service.request("POST", SIGN, {"attest": attest, "orig": {"tn": orig}, "dest": {"tn": dests},
                                          "iat": int(time.time())}, auth=key)


def attest_of(identity: str) -> str:
    return passport.decode(identity.split(";", 1)[0]).claims["attest"]


# ---------------------------------------------------------------------------- over HTTP
def test_a_number_the_customer_may_show_is_signed_a(service):
    status, body = atis(service, ACME_KEY, ACME_NUMBER, [PERSON])
    assert status == 200, body
    identity = body["signingResponse"]["identity"]
    assert attest_of(identity) == "A"
    verdict = service.request("POST", VERIFY, {"verificationRequest": {
        "from": {"tn": ACME_NUMBER}, "to": {"tn": [PERSON]}, "identity": identity}}, auth=PLAIN_KEY)[1]
    assert verdict["verificationResponse"]["verstat"] == "TN-Validation-Passed"
    status, body = ms(service, BANK_KEY, BANK_NUMBER, [PERSON])
    assert status == 200 and attest_of(body["identityHeader"]) == "A"


@pytest.mark.parametrize("key, orig", [(ACME_KEY, OTHER), (ACME_KEY, BANK_NUMBER), (BANK_KEY, ACME_NUMBER)])
def test_any_other_number_is_a_403_naming_the_rule_in_both_dialects(service, key, orig):
    for send in (atis, ms):
        status, body = send(service, key, orig, [PERSON])
        assert status == 403, body
        assert body["rules"] == ["outbound.unauthorised-number"] and "unauthorised-number" in body["error"]
        assert "identity" not in str(body)


def test_an_outbound_rule_that_acts_refuses_the_same_way(service):
    status, body = atis(service, ACME_KEY, ACME_NUMBER, [OPPOSED])
    assert (status, body["rules"]) == (403, ["canvass.opposition"])
    status, body = ms(service, ACME_KEY, ACME_NUMBER, [PERSON, OPPOSED])  # one called number is enough
    assert (status, body["rules"]) == (403, ["canvass.opposition"])
    assert ms(service, BANK_KEY, BANK_NUMBER, [OPPOSED])[0] == 200  # bank has no opposition list


def test_a_key_of_no_customer_never_gets_a_signature(service):
    status, body = atis(service, PLAIN_KEY, ACME_NUMBER, [PERSON])
    assert status == 403 and "no customer" in body["error"] and body["rules"] == []
    # ... but verifies as before
    status, body = service.verify_atis(None, auth=PLAIN_KEY)
    assert status == 200 and body["verificationResponse"]["reasoncode"] == 428


def test_the_level_asked_for_is_never_raised(service):
    status, body = atis(service, ACME_KEY, ACME_NUMBER, [PERSON], attest="C")
    assert status == 200 and attest_of(body["signingResponse"]["identity"]) == "C"


def test_bad_requests_and_unknown_keys_are_still_400_and_401(service):
    assert atis(service, "unknown-" + "x" * 24, ACME_NUMBER, [PERSON])[0] == 401
    status, body = service.request("POST", SIGN, {"signingRequest": {"attest": "A"}}, auth=ACME_KEY)
    assert status == 400 and "rules" not in body


def test_sign_b_on_redis_through_the_asgi_path(tmp_path, redis_server):  # noqa: F811
    # a shared store sends signings to the worker's threads (the ASGI path, not the inline one)
    with configured(tmp_path, redis_url=redis_server.url, unauthorised="sign-b") as s:
        status, body = atis(s, ACME_KEY, OTHER, [PERSON])
        assert status == 200 and attest_of(body["signingResponse"]["identity"]) == "B"
        status, body = atis(s, ACME_KEY, ACME_NUMBER, [PERSON])
        assert status == 200 and attest_of(body["signingResponse"]["identity"]) == "A"
        status, body = atis(s, ACME_KEY, OTHER, [OPPOSED])  # sign-b never covers another rule
        assert (status, body["rules"]) == (403, ["canvass.opposition"])
        assert atis(s, PLAIN_KEY, ACME_NUMBER, [PERSON])[0] == 403


# ---------------------------------------------------------------------------- configuration
def _build(edit):
    config = {"trust_anchors": ["root.pem"], "signer": None, "server": {"api_keys": [PLAIN_KEY]},
              "screening": {"customers": {"acme": {"numbers": ["0140000001"]}}}}
    edit(config)
    if config["signer"] is None:
        del config["signer"]
    return settings.build(config, verifier_factory=lambda c: None)


@pytest.mark.parametrize("edit, key", [
    (lambda c: c["server"].update(api_keys=[{"key": ACME_KEY, "customer": "nobody"}]),
     r"server\.api_keys\[0\]\.customer: 'nobody' is not in screening\.customers"),
    (lambda c: c["server"].update(api_keys=[PLAIN_KEY, {"key": ACME_KEY, "customer": 7}]),
     r"server\.api_keys\[1\]\.customer"),
    (lambda c: c["server"].update(api_keys=[{"key": ACME_KEY, "client": "acme"}]), r"server\.api_keys\[0\]"),
    (lambda c: c["server"].update(api_keys=[{"customer": "acme"}]), r"server\.api_keys\[0\]"),
    (lambda c: c["server"].update(api_keys=[{"key": "short", "customer": "acme"}]), r"server\.api_keys"),
    (lambda c: c["server"].update(api_keys=[{"key": ACME_KEY, "customer": "acme"}]) or c.pop("screening"),
     r"not in screening\.customers"),
    (lambda c: c.update(signer={"key": "k.pem", "x5u": "https://x", "unauthorised": "sign-c"}),
     r"signer\.unauthorised"),
])
def test_configuration_mistakes_name_the_key(edit, key):
    with pytest.raises(ConfigError, match=key):
        _build(edit)


def test_plain_keys_are_as_before():
    setup = _build(lambda c: None)
    assert setup.server.key_customers == () and setup.unauthorised == "refuse"
    mapped = _build(lambda c: c["server"].update(api_keys=[PLAIN_KEY, {"key": ACME_KEY, "customer": "acme"}]))
    assert mapped.server.key_customers == (None, "acme") and mapped.server.api_keys[1] == ACME_KEY.encode()


# ---------------------------------------------------------------------------- the Python API
def test_signer_users_get_the_same_decision_from_authorise(tmp_path):
    from manverify.serve import lab

    lab.write(tmp_path)
    signer = Signer((tmp_path / "signer.key").read_bytes(), lab.LAB_X5U)
    screen = Screen.from_dict({"reload": False, "customers": {"acme": {"numbers": ["0140000000-0140000001"]}}})
    a = screen.authorise("acme", ACME_NUMBER, PERSON)
    assert a.attest == "A" and attest_of(signer.sign(ACME_NUMBER, PERSON, a.attest)) == "A"
    refused = screen.authorise("acme", OTHER, PERSON)
    assert refused.attest is None and refused.rules == ("outbound.unauthorised-number",)
    assert screen.authorise("acme", OTHER, PERSON, unauthorised="sign-b").attest == "B"
    assert screen.authorise("nobody", ACME_NUMBER, PERSON, unauthorised="sign-b").attest is None
