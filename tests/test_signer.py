"""Signer: what it signs is what a verifier would judge fresh at the signer's clock."""
import time

import pytest

from manverify import Signer, Verifier
from manverify.errors import ConfigError, UsageError

from .conftest import NOW

ORIG, DEST = "+33612345678", "+33198765432"
YEAR = 365 * 86400


@pytest.mark.parametrize("iat", [NOW + YEAR, NOW - YEAR, NOW + 61, NOW - 61, 0, -1, 2 ** 63 - 1, 2 ** 64 - 1,
                                 10 ** 400, -10 ** 400])
def test_iat_outside_the_clock_window_is_refused(signer, iat):
    for sign in (signer.sign, signer.passport, lambda o, d, iat: signer.sign_div(o, d, "0198765499", iat=iat)):
        with pytest.raises(UsageError, match="freshness window") as e:
            sign(ORIG, DEST, iat=iat)
        assert len(str(e.value)) < 200


@pytest.mark.parametrize("offset", [-60, -1, 0, 1, 60])
def test_iat_within_the_window_is_signed_and_verifies(signer, verifier, offset):
    h = signer.sign(ORIG, DEST, iat=NOW + offset)
    assert verifier.verify(h, orig=ORIG, dest=DEST, now=NOW).ok


def test_the_window_is_the_signers_max_age(lab):
    s = Signer(lab.signer.key_pem, lab.x5u, max_age=300, clock=lambda: NOW)
    s.sign(ORIG, DEST, iat=NOW - 300)
    with pytest.raises(UsageError):
        s.sign(ORIG, DEST, iat=NOW - 301)


def test_without_iat_the_clock_dates_the_token(lab):
    s = Signer(lab.signer.key_pem, lab.x5u, clock=lambda: NOW - 3600.7)
    v = Verifier(trust_anchors=[lab.root.pem], certificates={lab.x5u: lab.chain_pem})
    r = v.verify(s.sign(ORIG, DEST), orig=ORIG, dest=DEST, now=NOW - 3600)
    assert r.ok and r.iat == NOW - 3601
    live = Signer(lab.signer.key_pem, lab.x5u)  # the real clock by default
    assert abs(v.verify(live.sign(ORIG, DEST), orig=ORIG, dest=DEST).iat - time.time()) < 5


@pytest.mark.parametrize("options", [dict(max_age=0), dict(max_age=-1), dict(max_age=True),
                                     dict(max_age=float("inf")), dict(clock=5)])
def test_bad_window_settings_are_config_errors(lab, options):
    with pytest.raises(ConfigError):
        Signer(lab.signer.key_pem, lab.x5u, **options)


def test_the_service_signer_takes_the_configured_window(lab, tmp_path):
    """manverify serve signs within the verifier's max_age, not a fixed 60 s: a service configured
    for 300 s accepts an iat 200 s off, as its own verifier would."""
    from manverify.serve.settings import build_signer

    (tmp_path / "key.pem").write_bytes(lab.signer.key_pem)
    section = {"key": str(tmp_path / "key.pem"), "x5u": lab.x5u}
    now = int(time.time())
    assert build_signer(section, 300).sign("0612345678", "0198765432", iat=now - 200)
    with pytest.raises(UsageError, match="freshness window"):
        build_signer(section).sign("0612345678", "0198765432", iat=now - 200)
