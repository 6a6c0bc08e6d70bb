"""The MAN policy: one table of (role, entry, calling number, result) → decision."""
import dataclasses

import pytest

from manverify.errors import ConfigError
from manverify.policy import Decision, Policy
from manverify.result import Result

OK = Result(ok=True, sip_code=None, detail="verified", attest="A", orig_tn="33612345678")


def failed(code):
    return Result(ok=False, sip_code=code, detail=f"failed with {code}")


FR_FIXED, FR_09, FR_MOBILE, FR_07 = "33198765432", "33912345678", "33612345678", "33712345678"
REUNION_FIXED, REUNION_MOBILE = "262262123456", "262692123456"
FOREIGN = "12025550100"

# role, entry, calling, result, expected (action, code, verstat, reason cause or None, mask, rule)
TABLE = [
    # terminating, national interconnect: interrupt on failure with the verifier's code
    ("terminating", "national", FR_MOBILE, OK, ("continue", None, "TN-Validation-Passed", None, False, "verified")),
    ("terminating", "national", FR_MOBILE, failed(438), ("reject", 438, None, None, False, "failed")),
    ("terminating", "national", FR_MOBILE, failed(403), ("reject", 403, None, None, False, "failed")),
    ("terminating", "national", FR_MOBILE, failed(428), ("reject", 428, None, None, False, "failed")),
    ("terminating", "national", None, failed(400), ("reject", 400, None, None, False, "failed")),
    ("terminating", "national", FOREIGN, failed(437), ("reject", 437, None, None, False, "failed")),
    # international gateway: French fixed/09 rejected, 06/07 masked, foreign delivered flagged
    ("terminating", "international", FR_FIXED, failed(428), ("reject", 428, None, None, False, "foreign-fixed")),
    ("terminating", "international", FR_09, failed(438), ("reject", 438, None, None, False, "foreign-fixed")),
    ("terminating", "international", REUNION_FIXED, failed(436), ("reject", 436, None, None, False, "foreign-fixed")),
    ("terminating", "international", FR_MOBILE, failed(428),
     ("continue", None, "No-TN-Validation", 428, True, "foreign-mobile-masked")),
    ("terminating", "international", FR_07, failed(438),
     ("continue", None, "TN-Validation-Failed", 438, True, "foreign-mobile-masked")),
    ("terminating", "international", REUNION_MOBILE, failed(438),
     ("continue", None, "TN-Validation-Failed", 438, True, "foreign-mobile-masked")),
    ("terminating", "international", FOREIGN, failed(428),
     ("continue", None, "No-TN-Validation", 428, False, "foreign-other")),
    ("terminating", "international", FR_FIXED, OK, ("continue", None, "TN-Validation-Passed", None, False, "verified")),
    # monitoring: never rejects, never masks; annotates with verstat and Reason
    ("monitoring", "national", FR_MOBILE, OK, ("continue", None, "TN-Validation-Passed", None, False, "verified")),
    ("monitoring", "national", FR_MOBILE, failed(438),
     ("continue", None, "TN-Validation-Failed", 438, False, "monitor:failed")),
    ("monitoring", "national", FR_MOBILE, failed(428),
     ("continue", None, "No-TN-Validation", 428, False, "monitor:failed")),
    ("monitoring", "international", FR_FIXED, failed(437),
     ("continue", None, "TN-Validation-Failed", 437, False, "monitor:foreign-fixed")),
    ("monitoring", "international", FR_MOBILE, failed(438),
     ("continue", None, "TN-Validation-Failed", 438, False, "foreign-mobile-masked")),
    # transit: presence and format only, nothing annotated
    ("transit", "national", FR_MOBILE, failed(428), ("continue", None, None, None, False, "transit")),
    ("transit", "international", FR_FIXED, failed(438), ("continue", None, None, None, False, "transit")),
    ("transit", "national", FR_MOBILE, OK, ("continue", None, None, None, False, "transit")),
]


@pytest.mark.parametrize("role, entry, calling, result, expected", TABLE)
def test_decision_table(role, entry, calling, result, expected):
    d = Policy(role=role).decide(result, entry=entry, calling=calling)
    action, code, verstat, cause, mask, rule = expected
    assert (d.action, d.code, d.verstat, d.mask, d.rule) == (action, code, verstat, mask, rule)
    assert d.reject == (action == "reject")
    if cause is None:
        assert d.reason_header == ""
    else:
        assert d.reason_header.startswith(f"SIP;cause={cause};text=")
    if d.reject:
        assert d.reason and d.verstat is None
    assert d.result is result and d.detail == result.detail


def test_reason_phrases_follow_the_man_table():
    p = Policy()
    phrases = {c: p.decide(failed(c)).reason for c in (400, 403, 428, 436, 437, 438)}
    assert phrases == {400: "Bad Request", 403: "Stale Date", 428: "Use Identity Header",
                       436: "Bad Identity Info", 437: "Unsupported Credential", 438: "Invalid Identity Header"}


def test_unknown_failure_code_becomes_438():
    assert Policy().decide(Result(ok=False, sip_code=None, detail="?")).code == 438


def test_bypass_is_reported_and_accepted_only_when_configured():
    token = "MAN-OUTAGE-2026-11-22"
    d = Policy().decide(failed(428), calling=FR_MOBILE, bypass=token)
    assert d.reject and d.bypass == token and not d.bypass_accepted
    p = Policy(accept_bypass=True)
    d = p.decide(failed(428), calling=FR_MOBILE, bypass=token)
    assert (d.action, d.verstat, d.rule, d.bypass_accepted) == ("continue", "No-TN-Validation", "bypass", True)
    # Only the authority's current token, when a list is configured.
    p = Policy(accept_bypass=True, bypass_tokens={"current"})
    assert p.decide(failed(438), bypass="old").reject
    assert not p.decide(failed(438), bypass="current").reject
    # Never honoured on the international gateway.
    assert Policy(accept_bypass=True).decide(failed(428), entry="international", calling=FR_FIXED,
                                             bypass=token).reject
    # A verified call stays verified with a token present.
    assert Policy(accept_bypass=True).decide(OK, bypass=token).verstat == "TN-Validation-Passed"


def test_options():
    assert not Policy(require_identity=False).decide(failed(428)).reject
    assert Policy(require_identity=False).decide(failed(428)).verstat == "No-TN-Validation"
    assert Policy(require_identity=False).decide(failed(438)).reject
    assert Policy(verstat_attest=True).decide(OK).verstat == "TN-Validation-Passed-A"
    d = Policy(role="monitoring", reason_protocol="STIR").decide(failed(437))
    assert d.reason_header == 'STIR;cause=437;text="Unsupported Credential"'
    assert Policy(reject_foreign_fixed=False).decide(failed(438), entry="international", calling=FR_FIXED).action \
        == "continue"
    d = Policy(mask_foreign_mobile=False).decide(failed(438), entry="international", calling=FR_MOBILE)
    assert not d.mask and d.rule == "foreign-other"
    assert Policy(role="transit", reject_malformed=True).decide(failed(428)).code == 428
    assert Policy(role="transit", reject_malformed=True).decide(failed(437)).action == "continue"
    custom = Policy(fixed_prefixes=("4420",), mobile_prefixes=())
    assert custom.decide(failed(438), entry="international", calling="442071234567").reject
    assert not custom.decide(failed(438), entry="international", calling=FR_FIXED).reject


def test_number_classes():
    p = Policy()
    assert [p.number_class(n) for n in (FR_FIXED, FR_09, FR_MOBILE, FR_07, REUNION_MOBILE, FOREIGN, None, "")] == \
        ["fixed", "fixed", "mobile", "mobile", "mobile", "other", "other", "other"]
    assert p.number_class("33812345678") == "other"  # 08 special numbers are not in either class


def test_immutable_and_from_dict():
    p = Policy.from_dict({"role": "monitoring", "bypass_tokens": ["a", "b"], "fixed_prefixes": ["331"]})
    assert p.role == "monitoring" and p.bypass_tokens == frozenset({"a", "b"}) and p.fixed_prefixes == ("331",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.role = "terminating"
    assert hash(Policy()) == hash(Policy())


@pytest.mark.parametrize("kw", [
    {"role": "enforce"}, {"reason_protocol": "Q.850"}, {"accept_bypass": "yes"}, {"fixed_prefixes": "331"},
    {"mobile_prefixes": ["+336"]}, {"bypass_tokens": "tok"}, {"bypass_tokens": [""]},
])
def test_configuration_mistakes_raise_config_error(kw):
    with pytest.raises(ConfigError):
        Policy(**kw)


def test_config_error_for_bad_entry_or_settings():
    with pytest.raises(ConfigError):
        Policy().decide(OK, entry="satellite")
    with pytest.raises(ConfigError):
        Policy().decide("not a result")
    with pytest.raises(ConfigError):
        Policy.from_dict({"rol": "terminating"})
    with pytest.raises(ConfigError):
        Policy.from_dict(["role"])


def test_decision_to_dict():
    d = Policy().decide(failed(438))
    j = d.to_dict()
    assert j["action"] == "reject" and j["code"] == 438 and j["result"]["sip_code"] == 438
    assert isinstance(Decision("continue", None, "", None).to_dict(), dict)
