"""Numbers a PASSporT carries are bounded where claims get their meaning (passport._meaning): a
hostile claim is a verdict (438), never an exception, whichever way the call comes in."""
import uuid

import pytest

from manverify import sip
from manverify.passport import MAX_IAT, MIN_IAT, PassportError, check_claims

from .conftest import NOW

ORIG, DEST = "+33612345678", "+33198765432"
C_ORIG, C_DEST = "33612345678", "33198765432"


def claims(iat, **more):
    return {"attest": "A", "dest": {"tn": [C_DEST]}, "iat": iat, "orig": {"tn": C_ORIG},
            "origid": str(uuid.uuid4()), **more}


HUGE = [2 ** 63, -2 ** 63 - 1, 2 ** 64 - 1, 10 ** 400, -10 ** 400, 10 ** 4000]


@pytest.mark.parametrize("iat", HUGE, ids=lambda v: f"{v:.3g}" if abs(v) < 1e300 else ("big" if v > 0 else "-big"))
def test_iat_beyond_64_bits_is_a_438(iat):
    with pytest.raises(PassportError) as e:
        check_claims(claims(iat), "shaken")
    assert e.value.code == 438 and "64-bit" in e.value.detail and len(e.value.detail) < 200


@pytest.mark.parametrize("iat", [MIN_IAT, MAX_IAT, 0, -1])
def test_iat_within_64_bits_has_its_meaning(iat):
    assert check_claims(claims(iat), "shaken").iat == iat


@pytest.mark.parametrize("iat", HUGE + [MAX_IAT, MIN_IAT, 1e400, -1e400])
def test_hostile_header_beside_a_valid_one_is_a_result_every_way_in(verifier, signer, iat):
    good = signer.sign(ORIG, DEST, iat=NOW)
    hostile = signer.sign_claims(claims(iat))
    for identity in ([good, hostile], [hostile, good], [hostile]):
        r = verifier.verify(identity, orig=ORIG, dest=DEST, now=NOW)
        assert r.ok == (good in identity), r.detail
        many = verifier.verify_many([dict(identity=identity, orig=ORIG, dest=DEST, now=NOW)] * 2)
        assert many == [r, r]
        invite = "\r\n".join([f"INVITE sip:{DEST}@h SIP/2.0", f"From: <sip:{ORIG}@h>;tag=1", f"To: <tel:{DEST}>",
                              *(f"Identity: {v}" for v in identity)]) + "\r\n\r\n"
        d = sip.check(invite, verifier, now=NOW)
        assert d.result.ok == r.ok and d.result.sip_code == r.sip_code
    alone = verifier.verify(hostile, orig=ORIG, dest=DEST, now=NOW)
    assert alone.sip_code in (403, 438)


def test_hostile_div_iat_is_a_result(verifier, signer):
    good = signer.sign(ORIG, DEST, iat=NOW)
    div = signer.sign_claims({"dest": {"tn": ["33700000000"]}, "div": {"tn": C_DEST}, "iat": 10 ** 400,
                              "orig": {"tn": C_ORIG}}, ppt="div")
    r = verifier.verify([good, div], orig=ORIG, dest="+33700000000", now=NOW)
    assert not r.ok and r.sip_code == 438
    assert [h.sip_code for h in r.headers] == [None, 438]
