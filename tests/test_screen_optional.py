"""Screening's dependencies (numpy, redis-py, holidays: the extra manverify[screen]) are needed only
to screen: verifying, signing, the CLI and the report work without them, as the release wheel's
tests on other CPythons install it (no extras)."""
import subprocess
import sys

BLOCK = "import sys\nfor name in ('numpy', 'redis', 'holidays'):\n    sys.modules[name] = None\n"


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + code], capture_output=True, text=True, timeout=120)


def test_verifying_signing_and_the_command_line_need_no_screening_dependency():
    done = _run(
        "import manverify, manverify.cli, manverify.report, manverify.sip, manverify.policy, manverify.batch\n"
        "from manverify import pki, Signer, Verifier\n"
        "lab = pki.lab_pki()\n"
        "v = Verifier(trust_anchors=[lab.root.pem], certificates={lab.x5u: lab.chain_pem})\n"
        "h = Signer(lab.signer.key_pem, lab.x5u).sign('0612345678', '0198765432')\n"
        "assert v.verify(h, orig='0612345678', dest='0198765432').ok\n"
        "import manverify.screen\n"
        "print('ok')\n")
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_screening_without_its_dependencies_says_which_is_missing():
    done = _run("from manverify.screen import Screen\n")
    assert done.returncode == 1 and "ModuleNotFoundError" in done.stderr, done.stderr
