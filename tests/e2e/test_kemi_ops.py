"""The KEMI handler's operations side against the fake KSR: the JSON (and the trust files it
names) reloaded by a worker without a restart, and manverify's log records in Kamailio's log."""
import json
import logging
import os
import threading

import pytest

from manverify.integrations.kamailio import KemiApp, load_config

from ..conftest import NOW  # noqa: F401 (the lab fixtures)
from .test_kemi_handler import FakeKSR, invite


class KSR(FakeKSR):
    def warn(self, text):
        self.calls.append(("warn", (text,)))

    def dbg(self, text):
        self.calls.append(("dbg", (text,)))


def _write(path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
    os.replace(tmp, path)


@pytest.fixture
def worker(tmp_path, lab):
    """A worker (child_init done) whose configuration lives in tmp_path/manverify.json."""
    (tmp_path / "root.pem").write_bytes(lab.root.pem)
    (tmp_path / "chain.pem").write_bytes(lab.chain_pem)
    config = {"trust_anchors": [str(tmp_path / "root.pem")], "certificates": {lab.x5u: str(tmp_path / "chain.pem")},
              "policy": {"role": "terminating"}}
    path = tmp_path / "manverify.json"
    _write(path, config)
    ksr = KSR(invite())
    app = KemiApp(load_config(str(path)), ksr=ksr, path=str(path))
    app.child_init(1)
    yield app, ksr, path, config
    logging.getLogger("manverify").removeHandler(app._log)
    logging.getLogger("manverify").setLevel(logging.NOTSET)


def _answer(app, ksr):
    """Send the fake's INVITE (no Identity) through the worker; the reply code or "relayed"."""
    ksr.calls.clear()
    app._next_look = 0.0  # as if a second had passed since the last look
    app.ksr_request_route(None)
    replies = [args[0] for name, args in ksr.calls if name == "sl.sl_send_reply"]
    return replies[0] if replies else "relayed"


def test_a_changed_policy_applies_without_a_restart(worker):
    app, ksr, path, config = worker
    verifier = app.verifier()
    assert _answer(app, ksr) == 428
    _write(path, dict(config, policy={"role": "monitoring"}))
    assert _answer(app, ksr) == "relayed"
    assert app.verifier() is verifier  # only the policy changed: the certificate cache stays


def test_a_bad_file_keeps_the_configuration_and_says_why_in_kamailios_log(worker):
    app, ksr, path, config = worker
    _write(path, b'{"trust_anchors": [')  # caught half-written
    assert _answer(app, ksr) == 428
    warnings = [args[0] for name, args in ksr.calls if name == "warn"]
    assert any("manverify: manverify configuration" in w and "cannot be used" in w for w in warnings), ksr.calls
    _write(path, dict(config, policy={"role": "no-such-role"}))
    assert _answer(app, ksr) == 428
    assert any("role" in args[0] for name, args in ksr.calls if name == "warn"), ksr.calls
    _write(path, dict(config, policy={"role": "monitoring"}))
    assert _answer(app, ksr) == "relayed"


def test_a_changed_trust_anchor_file_rebuilds_the_verifier(worker, lab):
    app, ksr, path, _ = worker
    verifier = app.verifier()
    _write(path.parent / "root.pem", lab.root.pem + lab.intermediate.pem)
    _answer(app, ksr)
    assert app.verifier() is not verifier


def test_records_from_other_threads_wait_for_the_worker_thread(worker):
    app, ksr, _, _ = worker
    log = logging.getLogger("manverify.certs.fetch")
    t = threading.Thread(target=log.warning, args=("x5u %s unreachable", "https://a.example/x.pem"))
    t.start()
    t.join()
    assert not any(name == "warn" for name, _ in ksr.calls)  # KSR is not called from that thread
    _answer(app, ksr)
    assert ("warn", ("manverify: x5u https://a.example/x.pem unreachable\n",)) in ksr.calls
    ksr.calls.clear()
    log.info("below the configured level")
    log.error("straight through\nsecond line")
    assert ksr.calls == [("err", ("manverify: straight through | second line\n",))]
