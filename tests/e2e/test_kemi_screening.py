"""The KEMI handler with screening (JSON key `screening`) against the fake KSR: 608 with a Reason
naming the rule, the tag header, divert to the configured URI, the partner from $si, one Screen
per worker built after fork, files relative to the JSON, reload with the rest."""
import json
import os

import pytest

from manverify.errors import ConfigError
from manverify.integrations.kamailio import KemiApp, build_screen, load_config

from ..conftest import NOW  # noqa: F401 (the lab fixtures)
from .test_kemi_handler import FakeKSR, invite

OPEN = {"role": "terminating", "require_identity": False}  # unsigned calls continue: screening decides
BURST = {"canvass.hours": {"enabled": False}, "pattern.burst": {"limit": 2, "window": 60}}


def _app(verifier, screening, **more):
    config = {"trust_anchors": ["unused"], "next_hop": "sip:127.0.0.1:5080", "policy": OPEN,
              "screening": screening, **more}
    return KemiApp(config, verifier_factory=lambda c: verifier)


def _call(app, message=None, **pvs):
    ksr = FakeKSR(message or invite(), pvs)
    app._ksr = ksr
    assert app.ksr_request_route(None) == 1
    return ksr


def _replies(ksr):
    return [args for name, args in ksr.calls if name == "sl.sl_send_reply"]


def test_a_burst_gets_608_with_a_reason_header_naming_the_rule(verifier):
    app = _app(verifier, {"rules": BURST})
    app.child_init(1)
    first = [_call(app) for _ in range(2)]
    third = _call(app)
    assert all("tm.t_relay" in k.names() and not _replies(k) for k in first)
    assert _replies(third) == [(608, "Rejected")] and "tm.t_relay" not in third.names()
    assert ("hdr.append_to_reply", ('Reason: SIP;cause=608;text="pattern.burst"\r\n',)) in third.calls
    # the header goes to the reply before it is sent
    names = third.names()
    assert names.index("hdr.append_to_reply") < names.index("sl.sl_send_reply")


def test_a_policy_rejection_has_no_screening_reason(verifier):
    app = KemiApp({"trust_anchors": ["unused"], "screening": {"rules": BURST}}, verifier_factory=lambda c: verifier)
    ksr = _call(app)  # the default policy: no Identity header, 428
    assert _replies(ksr) == [(428, "Use Identity Header")] and "hdr.append_to_reply" not in ksr.names()


def test_tagged_calls_carry_the_label_header(verifier):
    app = _app(verifier, {"tag_header": "X-Screening", "rules": {"canvass.hours": {"enabled": False}}})
    canvasser = invite().replace("+33612345678", "+33162000001")
    ksr = _call(app, canvasser)
    assert ("hdr.append", ("X-Screening: canvassing\r\n",)) in ksr.calls and "tm.t_relay" in ksr.names()


def test_a_diverted_call_is_relayed_to_the_divert_uri(verifier):
    app = _app(verifier, {"divert_to": "sip:ivr@127.0.0.1:5099",
                          "rules": {**BURST, "pattern.burst": {"limit": 1, "action": "divert"}}})
    normal, diverted = _call(app), _call(app)
    assert ("pv.sets", ("$du", "sip:127.0.0.1:5080")) in normal.calls
    du = [args[1] for name, args in diverted.calls if name == "pv.sets" and args[0] == "$du"]
    assert du == ["sip:ivr@127.0.0.1:5099"] and "tm.t_relay" in diverted.names()
    # native routing (kamailio-native.cfg): verify_invite relays, with $du set
    ksr = FakeKSR(invite())
    app._ksr = ksr
    assert app.verify_invite(None) == 1 and ("pv.sets", ("$du", "sip:ivr@127.0.0.1:5099")) in ksr.calls


def test_the_partner_comes_from_the_source_address(verifier):
    seen = []

    class Spy:
        def __init__(self, screen):
            self.screen, self.tag_header = screen, screen.tag_header

        def check(self, **kw):
            seen.append(kw["partner"])
            return self.screen.check(**kw)

        def close(self):
            self.screen.close()

    config = {"trust_anchors": ["unused"], "policy": OPEN, "screening": {},
              "partners": {"op-a": ["192.0.2.0/24", "2001:db8::/32"], "op-b": ["198.51.100.7"]}}
    app = KemiApp(config, verifier_factory=lambda c: verifier,
                  screen_factory=lambda c, base, reload=True: Spy(build_screen(c, base, reload=False)))
    for source in ("192.0.2.9", "[2001:db8::1]", "198.51.100.7", "203.0.113.1", "not-an-address"):
        _call(app, **{"$si": source})
    assert seen == ["op-a", "op-a", "op-b", None, None]


def test_list_files_are_read_relative_to_the_json(tmp_path, verifier, monkeypatch):
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "block.txt").write_text("+33612345678\n")
    config = {"trust_anchors": ["unused"], "policy": OPEN, "screening": {"lists": {"block": ["lists/block.txt"]}}}
    path = tmp_path / "kamailio.json"
    path.write_text(json.dumps(config))
    monkeypatch.chdir("/")  # the list is found next to the JSON, not in the working directory
    app = KemiApp(load_config(str(path)), verifier_factory=lambda c: verifier, path=str(path))
    assert _replies(_call(app, **{"$si": "192.0.2.1"})) == [(608, "Rejected")]


def test_one_screen_per_worker_built_after_fork(verifier):
    built = []

    def factory(config, base, reload=True):
        screen = build_screen(config, base, reload=reload)
        built.append((os.getpid(), reload, screen))
        return screen

    app = KemiApp({"trust_anchors": ["x"], "screening": {"rules": BURST}}, verifier_factory=lambda c: verifier,
                  screen_factory=factory)
    assert [(pid, reload) for pid, reload, _ in built] == [(os.getpid(), False)]  # checked, not watching
    app.child_init(0)
    assert len(built) == 1
    app.child_init(1)
    assert len(built) == 2 and built[1][1] is True and app._setup.screen is built[1][2]
    app._pid = -1  # as if forked again: that worker's own Screen (its own Redis connections)
    app.verifier()
    assert len(built) == 3 and app._setup.screen is built[2][2]


@pytest.mark.parametrize("config", [
    {"screening": {"rules": {"no.such.rule": {}}}},
    {"screening": {"mode": "sometimes"}},
    {"screening": {"lists": {"block": ["/nonexistent/block.txt"]}}},
    {"screening": "yes"},
    {"partners": ["192.0.2.1"]},
    {"partners": {"a": "192.0.2.1"}},
    {"partners": {"a": ["not-an-ip"]}},
])
def test_configuration_mistakes(config, verifier):
    with pytest.raises(ConfigError):
        KemiApp({"trust_anchors": ["x"], **config}, verifier_factory=lambda c: verifier)


def test_reload_keeps_the_screen_unless_its_mapping_changed(tmp_path, lab):
    (tmp_path / "root.pem").write_bytes(lab.root.pem)
    config = {"trust_anchors": [str(tmp_path / "root.pem")], "policy": OPEN, "screening": {"rules": BURST}}
    path = tmp_path / "manverify.json"

    def write(c):
        tmp = path.with_name("tmp.json")
        tmp.write_text(json.dumps(c))
        os.replace(tmp, path)

    write(config)
    app = KemiApp(load_config(str(path)), ksr=FakeKSR(invite()), path=str(path))
    app.child_init(1)
    screen = app._setup.screen

    def answer():
        app._next_look = 0.0
        return (_replies(_call(app)) or [("relayed",)])[0][0]

    assert [answer(), answer()] == ["relayed", "relayed"]
    write(dict(config, log_decisions=True))  # another key: same Screen, its counts go on
    assert answer() == 608 and app._setup.screen is screen
    write(dict(config, screening={"rules": {**BURST, "pattern.burst": {"limit": 10}}}))
    assert answer() == "relayed" and app._setup.screen is not screen


def test_a_partner_block_list_applies_to_calls_from_its_addresses(tmp_path, verifier):
    (tmp_path / "op-a-block.txt").write_text("+33612345678\n")
    config = {"trust_anchors": ["unused"], "policy": OPEN, "partners": {"op-a": ["192.0.2.0/24"]},
              "screening": {"rules": {"canvass.hours": {"enabled": False}},
                            "lists": {"partners": {"op-a": {"block": ["op-a-block.txt"]}}}}}
    path = tmp_path / "kamailio.json"
    path.write_text(json.dumps(config))
    app = KemiApp(load_config(str(path)), verifier_factory=lambda c: verifier, path=str(path))
    assert _replies(_call(app, **{"$si": "192.0.2.1"})) == [(608, "Rejected")]
    assert _replies(_call(app, **{"$si": "198.51.100.1"})) == []  # another partner's call: relayed


def test_redirect_mode_answers_608_with_the_reason_and_diverts_with_a_302():
    from manverify.integrations.redirect import redirect_reply
    from manverify.policy import Decision, Policy
    from manverify.screen.decision import ScreenDecision

    s = ScreenDecision("reject", ("pattern.burst",), 608, "Rejected", None, {}, acted=("pattern.burst",))
    rejected = Decision("reject", 608, "Rejected", None, s.reason_header(), rule="screening", screening=s)
    reply = redirect_reply(rejected, "sip:+33198765432@sbc.example", Policy())
    assert (reply.code, reply.phrase, reply.headers) == (608, "Rejected",
                                                         (("Reason", 'SIP;cause=608;text="pattern.burst"'),))
    diverted = Decision("continue", None, "", "No-TN-Validation", divert_to="sip:ivr@192.0.2.9")
    reply = redirect_reply(diverted, "sip:+33198765432@sbc.example", Policy())
    assert reply.code == 302 and reply.contact == "sip:ivr@192.0.2.9"
    # a policy rejection keeps the policy's own Reason
    reply = redirect_reply(Decision("reject", 438, "Invalid Identity Header", None), "sip:x@h", Policy())
    assert reply.headers == (("Reason", 'SIP;cause=438;text="Invalid Identity Header"'),)


def test_a_changed_list_applies_on_the_workers_next_look(tmp_path, verifier):
    listing = tmp_path / "block.txt"
    listing.write_text("+33699999999\n")
    config = {"trust_anchors": ["unused"], "policy": OPEN,
              "screening": {"rules": {"canvass.hours": {"enabled": False}}, "lists": {"block": ["block.txt"]}}}
    path = tmp_path / "kamailio.json"
    path.write_text(json.dumps(config))
    app = KemiApp(load_config(str(path)), verifier_factory=lambda c: verifier, path=str(path))
    app.child_init(1)
    assert _replies(_call(app)) == []
    new = tmp_path / "block.new"
    new.write_text("+33699999999\n+33612345678\n")
    os.replace(new, listing)
    app._next_look = 0.0  # a second later
    assert _replies(_call(app)) == [(608, "Rejected")]
    assert app._setup.screen.stats()["reloads"]["screening lists"]["reloads"] == 1


def test_a_workers_screening_counts_reach_prometheus(verifier):
    prometheus_client = pytest.importorskip("prometheus_client", reason="prometheus_client (extra manverify[metrics])")
    from manverify import metrics

    def rejected():
        return prometheus_client.REGISTRY.get_sample_value(
            "manverify_screening_rules_total", {"rule": "pattern.burst", "outcome": "reject"}) or 0.0

    app = _app(verifier, {"rules": {**BURST, "pattern.burst": {"limit": 1}}}, metrics=True)
    app.child_init(1)
    metrics.flush()
    before = rejected()
    for _ in range(3):
        _call(app)
    app._next_look = 0.0
    _call(app)  # the worker's look before this call writes the counts out
    assert rejected() - before == 2
