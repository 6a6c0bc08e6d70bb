"""Interop with secsipidx, an independent Go STIR/SHAKEN implementation (Debian package
`secsipidx`, installed by .ci/run): it signs and we verify, we sign and it verifies."""
import shutil
import subprocess
import time
import uuid

import pytest

from manverify import Signer

pytestmark = pytest.mark.interop

SECSIPIDX = shutil.which("secsipidx")
if SECSIPIDX is None:
    pytest.skip("secsipidx is not installed (apt-get install secsipidx; .ci/run does)", allow_module_level=True)


@pytest.fixture(scope="module")
def files(lab, tmp_path_factory):
    d = tmp_path_factory.mktemp("secsipidx")
    (d / "key.pem").write_bytes(lab.signer.key_pem)
    (d / "cert.pem").write_bytes(lab.signer.pem)
    return d


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SECSIPIDX, *args], capture_output=True, text=True, timeout=20)


def _their_token(files, lab, orig, dest, attest, iat, origid) -> str:
    p = _run("-sign", "-orig-tn", orig, "-dest-tn", dest, "-attest", attest, "-orig-id", origid,
             "-iat", str(iat), "-x5u", lab.x5u, "-k", str(files / "key.pem"))
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


CASES = [
    ("33612345678", "33198765432", "A"),
    ("33700000001", "33612345678", "B"),
    ("590690123456", "262692000000", "C"),
    ("12025550100", "33198765432", "A"),
]


@pytest.mark.parametrize("orig, dest, attest", CASES)
def test_they_sign_we_verify(files, lab, verifier, orig, dest, attest):
    now = int(time.time())
    origid = str(uuid.uuid4())
    token = _their_token(files, lab, orig, dest, attest, now, origid)
    header = f"{token};info=<{lab.x5u}>;alg=ES256;ppt=shaken"
    r = verifier.verify(header, orig="+" + orig, dest="+" + dest, now=now)
    assert r.ok, r.detail
    assert (r.attest, r.origid, r.spc) == (attest, origid, "1001")
    # Their token, our checks on the call and on the bytes:
    assert verifier.verify(header, orig="+33699999999", dest="+" + dest, now=now).sip_code == 438
    assert verifier.verify(header, orig="+" + orig, dest="+" + dest, now=now + 120).sip_code == 403
    h, c, s = token.split(".")
    forged = f"{h}.{c}.{s[:20]}{'A' if s[20] != 'A' else 'B'}{s[21:]};info=<{lab.x5u}>;alg=ES256;ppt=shaken"
    assert verifier.verify(forged, orig="+" + orig, dest="+" + dest, now=now).sip_code == 438


def test_their_full_header_we_verify(files, lab, verifier):
    p = _run("-sign-full", "-orig-tn", "33612345678", "-dest-tn", "33198765432", "-attest", "A",
             "-orig-id", str(uuid.uuid4()), "-x5u", lab.x5u, "-k", str(files / "key.pem"))
    assert p.returncode == 0, p.stderr
    header = p.stdout.strip()
    assert ";info=<" in header
    # -sign-full stamps the current time (it ignores -iat): verify against the clock.
    r = verifier.verify(header, orig="0612345678", dest="0198765432")
    assert r.ok, r.detail


@pytest.mark.parametrize("orig, dest, attest", CASES)
def test_we_sign_they_verify(files, lab, orig, dest, attest):
    signer = Signer(lab.signer.key_pem, lab.x5u)
    header = signer.sign("+" + orig, "+" + dest, attest=attest)
    p = _run("-check", "-identity", header, "-p", str(files / "cert.pem"), "-expire", "60")
    assert p.returncode == 0, p.stdout + p.stderr


def test_they_reject_what_we_would(files, lab):
    signer = Signer(lab.signer.key_pem, lab.x5u)
    stale = Signer(lab.signer.key_pem, lab.x5u, clock=lambda: time.time() - 3600).sign("+33612345678", "0198765432")
    assert _run("-check", "-identity", stale, "-p", str(files / "cert.pem"), "-expire", "60").returncode != 0
    good = signer.sign("+33612345678", "0198765432")
    token, params = good.split(";", 1)
    h, c, s = token.split(".")
    forged = f"{h}.{c}.{s[:20]}{'A' if s[20] != 'A' else 'B'}{s[21:]};{params}"
    assert _run("-check", "-identity", forged, "-p", str(files / "cert.pem"), "-expire", "60").returncode != 0
