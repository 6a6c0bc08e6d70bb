"""The KEMI handler against a recording fake of Kamailio's KSR object (no processes; runs
everywhere): replies, header edits, per-process verifier, and the 500-never-raise guarantee."""
import os
import time

import pytest

from manverify.errors import ConfigError
from manverify.integrations.kamailio import KemiApp

from ..conftest import NOW

ORIG, DEST = "+33612345678", "+33198765432"


class FakeKSR:
    def __init__(self, message, pvs=None, fail_on=None):
        self.calls = []
        self._pv = {"$rm": "INVITE", "$tt": None, "$mb": message, "$si": "127.0.0.1", "$ci": "c1"}
        self._pv.update(pvs or {})
        self.fail_on = fail_on
        ksr = self

        class _NS:
            def __init__(self, name):
                self._name = name

            def __getattr__(self, fn):
                def call(*args):
                    ksr.calls.append((f"{self._name}.{fn}", args))
                    if ksr.fail_on == f"{self._name}.{fn}":
                        raise RuntimeError("boom")
                    return 1 if fn != "t_precheck_trans" else -1
                return call

        self.pv = _NS("pv")
        self.pv.get = self._get
        self.sl, self.tm, self.tmx, self.hdr = _NS("sl"), _NS("tm"), _NS("tmx"), _NS("hdr")

    def _get(self, name):
        value = self._pv.get(name)
        if isinstance(value, Exception):
            raise value
        return value

    def err(self, text):
        self.calls.append(("err", (text,)))

    def info(self, text):
        self.calls.append(("info", (text,)))

    def names(self):
        return [c[0] for c in self.calls]


def invite(*headers):
    return "\r\n".join([f"INVITE sip:{DEST}@127.0.0.1 SIP/2.0", f"From: <sip:{ORIG}@h>;tag=1",
                        f"To: <sip:{DEST}@h>", *headers]) + "\r\n\r\n"


@pytest.fixture
def app(lab, verifier):
    return KemiApp({"trust_anchors": ["unused"], "next_hop": "sip:127.0.0.1:5080",
                    "international_sources": ["198.51.100.0/24"]},
                   verifier_factory=lambda config: verifier)


def test_verified_invite_is_relayed_with_verstat(app, signer_at):
    # the handler judges freshness by the wall clock, so the token is dated by it too (the signer
    # fixture's fixed NOW goes stale a minute into the run)
    ksr = FakeKSR(invite(f"Identity: {signer_at(time.time()).sign(ORIG, DEST)}"))
    app._ksr = ksr
    assert app.ksr_request_route(None) == 1
    assert ("hdr.append", (f"P-Asserted-Identity: <sip:{ORIG}@h;verstat=TN-Validation-Passed>\r\n",)) in ksr.calls
    assert ("pv.sets", ("$du", "sip:127.0.0.1:5080")) in ksr.calls and "tm.t_relay" in ksr.names()
    assert "sl.sl_send_reply" not in ksr.names()


def test_failed_invite_is_rejected_with_the_policy_code(app):
    ksr = FakeKSR(invite())
    app._ksr = ksr
    app.ksr_request_route(None)
    assert ("sl.sl_send_reply", (428, "Use Identity Header")) in ksr.calls
    assert "tm.t_relay" not in ksr.names()


def test_binary_message_is_read_hex_encoded(app):
    raw = invite("Identity: \xff\xfe;info=<x>").encode("latin-1")
    ksr = FakeKSR(UnicodeDecodeError("utf-8", raw, 0, 1, "bad"), pvs={"$(mb{s.encode.hexa})": raw.hex()})
    app._ksr = ksr
    app.ksr_request_route(None)
    assert ("sl.sl_send_reply", (438, "Invalid Identity Header")) in ksr.calls


def test_international_source_masks_unauthenticated_mobile(app):
    ksr = FakeKSR(invite(), pvs={"$si": "198.51.100.7"})
    app._ksr = ksr
    app.ksr_request_route(None)
    assert ("hdr.append", ("Privacy: id\r\n",)) in ksr.calls and "tm.t_relay" in ksr.names()


def test_in_dialog_and_other_requests_are_relayed_unverified(app):
    for pvs in ({"$rm": "ACK"}, {"$rm": "BYE", "$tt": "x"}, {"$rm": "INVITE", "$tt": "t"}):
        ksr = FakeKSR(None, pvs=pvs)
        app._ksr = ksr
        app.ksr_request_route(None)
        assert "tm.t_relay" in ksr.names() and "sl.sl_send_reply" not in ksr.names()


def test_internal_error_answers_500_and_never_raises(app):
    ksr = FakeKSR(invite(), fail_on="sl.sl_send_reply")
    app._ksr = ksr
    assert app.ksr_request_route(None) == 1  # even the 500 failed: still no exception
    ksr = FakeKSR(invite(), fail_on="tmx.t_precheck_trans")
    app._ksr = ksr
    app.ksr_request_route(None)
    assert ("sl.sl_send_reply", (500, "Server Internal Error")) in ksr.calls
    assert any(name == "err" and "Traceback" in args[0] for name, args in ksr.calls)


def test_verifier_is_built_per_process(verifier):
    built = []

    def factory(config):
        built.append(os.getpid())
        return verifier

    app = KemiApp({"trust_anchors": ["x"]}, verifier_factory=factory)
    assert len(built) == 1  # checked once at start-up, in the main process
    app.child_init(0)
    assert len(built) == 1
    app.child_init(1)  # a SIP worker: its own verifier
    assert len(built) == 2
    app._pid = -1  # as if forked again
    app.verifier()
    assert len(built) == 3
    assert app.ksr_reply_route(None) == 1 and app.ksr_onsend_route(None) == 1


@pytest.mark.parametrize("config", [
    {}, {"trust_anchors": ["x"], "policy": {"role": "x"}}, {"trust_anchors": ["x"], "entry": "moon"},
    {"trust_anchors": ["x"], "international_sources": ["not-an-ip"]}, {"trust_anchors": ["x"], "next_hop": "127.0.0.1"},
    {"trust_anchors": ["x"], "unknown": 1},
])
def test_configuration_mistakes(config, verifier):
    with pytest.raises(ConfigError):
        KemiApp(config, verifier_factory=lambda c: verifier)


def test_real_factory_reads_files(tmp_path, lab):
    from manverify.integrations.kamailio import build_verifier, load_config

    (tmp_path / "root.pem").write_bytes(lab.root.pem)
    (tmp_path / "chain.pem").write_bytes(lab.chain_pem)
    v = build_verifier({"trust_anchors": [str(tmp_path / "root.pem")],
                        "certificates": {lab.x5u: str(tmp_path / "chain.pem")}})
    assert v.verify("x", orig=ORIG, dest=DEST, now=NOW).sip_code == 438
    with pytest.raises(ConfigError):
        build_verifier({"trust_anchors": [str(tmp_path / "root.pem")], "certificates": {lab.x5u: "/nonexistent"}})
    with pytest.raises(ConfigError):
        load_config(str(tmp_path / "missing.json"))
