"""`manverify serve` with `screening` over real HTTP: the screening object in verification answers
(both dialects), POST /screening/v1/check for SBCs that verify themselves, its 400s, keys, 404
when screening is not configured."""
import json

import pytest

pytest.importorskip("uvicorn", reason="uvicorn (extra manverify[serve], Python >= 3.10) is not installed")

from .redishelp import redis_server  # noqa: E402,F401 - fixture
from .servehelp import DEST, ORIG, Service  # noqa: E402

VERIFY, CHECK = "/stir/v1/verification", "/screening/v1/check"
BLOCKED = "+33612000999"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    directory = tmp_path_factory.mktemp("serve-screening")
    (directory / "lists").mkdir()
    (directory / "lists" / "block.txt").write_text(f"# numbers reported to us\n{BLOCKED}\n")

    def edit(config):
        config["screening"] = {
            "lists": {"block": ["lists/block.txt"]},  # relative to the configuration's folder
            "rules": {"canvass.hours": {"enabled": False}, "pattern.burst": {"limit": 2, "window": 60}}}

    # one worker: local counters count every call of the test in one place
    with Service(directory, edit, workers=1) as s:
        yield s


def _ms(service, identity, orig, dest=DEST):
    body = {"verificationRequest": {"identityHeader": identity, "from": f"<sip:{orig}@h>", "to": f"<sip:{dest}@h>"}}
    return service.request("POST", VERIFY, body)


def test_verification_answers_carry_the_screening(service):
    orig = "+33612000001"
    answers = [service.verify_atis(service.signer.sign(orig, DEST), orig=orig)[1]["verificationResponse"]
               for _ in range(2)]
    status, third = service.verify_atis(service.signer.sign(orig, DEST), orig=orig)
    assert status == 200
    for r in answers:
        assert r["screening"]["action"] == "allow" and r["screening"]["rules"] == []
        assert r["decision"]["action"] == "continue"
    s = third["verificationResponse"]["screening"]
    assert (s["action"], s["code"], s["rules"], s["acted"]) == ("reject", 608, ["pattern.burst"], ["pattern.burst"])
    assert s["values"]["pattern.burst"]["count"] == 3 and "plan" in s["versions"]
    assert third["verificationResponse"]["decision"]["action"] == "continue"  # MAN's own decision, unchanged


def test_the_3gpp_dialect_carries_it_too(service):
    status, body = _ms(service, service.signer.sign(BLOCKED, DEST), BLOCKED)
    r = body["verificationResponse"]
    assert status == 200 and r["verstatValue"] == "TN-Validation-Passed"
    assert r["screening"]["action"] == "reject" and r["screening"]["rules"] == ["list.block"]


def test_a_call_the_policy_rejects_is_not_screened(service):
    status, body = service.verify_atis(None, orig=BLOCKED)  # no Identity: 428, terminating
    r = body["verificationResponse"]
    assert status == 200 and r["decision"]["code"] == 428 and "screening" not in r


def test_check_endpoint(service):
    status, body = service.request("POST", CHECK, {"orig": BLOCKED, "dest": DEST})
    assert status == 200 and body["screening"]["action"] == "reject"
    assert body["screening"]["values"]["list.block"]["scope"] == "global"
    status, body = service.request("POST", CHECK, {"orig": "0162000001", "dest": "0612345678", "entry": "national",
                                                   "partner": "op-a", "time": 1767605400, "verstat":
                                                   "TN-Validation-Passed", "attest": "A"})
    assert status == 200 and body["screening"]["action"] == "tag" and body["screening"]["label"] == "canvassing"
    # what the SBC's own verification said feeds the international rules
    status, body = service.request("POST", CHECK, {"orig": "+33698000001", "dest": DEST, "entry": "international",
                                                   "verstat": "TN-Validation-Failed"})
    assert status == 200 and body["screening"]["action"] == "mask" and "intl.fr-mobile" in body["screening"]["rules"]
    status, body = service.request("POST", CHECK, {"orig": "+33698000001", "dest": DEST, "entry": "international",
                                                   "verstat": "TN-Validation-Passed", "attest": "A"})
    assert status == 200 and "intl.fr-mobile" not in body["screening"]["rules"]


def test_garbage_numbers_get_a_decision(service):
    for orig in ("not a number", "+" + "9" * 40, "anonymous"):
        status, body = service.request("POST", CHECK, {"orig": orig, "dest": "?"})
        assert status == 200 and body["screening"]["action"] in ("allow", "reject"), body


@pytest.mark.parametrize("body, message", [
    ({"dest": DEST}, "orig"),
    ({"orig": ORIG}, "dest"),
    ({"orig": 33612345678, "dest": DEST}, "orig"),
    ({"orig": ORIG, "dest": DEST, "entry": "moon"}, "entry"),
    ({"orig": ORIG, "dest": DEST, "partner": 7}, "partner"),
    ({"orig": ORIG, "dest": DEST, "time": "now"}, "time"),
    ({"orig": ORIG, "dest": DEST, "time": True}, "time"),
    ({"orig": ORIG, "dest": DEST, "verstat": "Passed"}, "verstat"),
    ({"orig": ORIG, "dest": DEST, "verstat": "TN-Validation-Passed", "attest": "D"}, "attest"),
    ({"orig": ORIG, "dest": DEST, "attest": "A"}, "attest"),
    ({"orig": ORIG, "dest": DEST, "direction": "outbound"}, "unknown"),
    ([ORIG, DEST], "object"),
    (b"{not json", "JSON"),
])
def test_bad_check_requests_are_400(service, body, message):
    status, out = service.request("POST", CHECK, body)
    assert status == 400 and message in out["error"], out


def test_check_needs_a_key_and_a_post(service):
    assert service.request("POST", CHECK, {"orig": ORIG, "dest": DEST}, auth=False)[0] == 401
    assert service.request("POST", CHECK, {"orig": ORIG, "dest": DEST}, auth="wrong-key-0123456789abcdef")[0] == 401
    assert service.request("GET", CHECK, auth=True)[0] == 405


def test_without_screening_there_is_no_endpoint_and_no_object(tmp_path):
    with Service(tmp_path, workers=1) as s:
        status, body = s.request("POST", CHECK, {"orig": ORIG, "dest": DEST})
        assert status == 404 and "screening" in body["error"]
        status, body = s.verify_atis(s.signer.sign(ORIG, DEST))
        assert status == 200 and "screening" not in body["verificationResponse"]


def test_a_bad_screening_configuration_stops_the_start(tmp_path):
    def edit(config):
        config["screening"] = {"rules": {"pattern.burst": {"limit": -1}}}

    with pytest.raises(RuntimeError, match="rules.pattern.burst.limit"):
        Service(tmp_path, edit, workers=1).start(timeout=20)


def test_a_changed_screening_mapping_applies_without_a_restart(tmp_path):
    def edit(config):
        config["screening"] = {"rules": {"canvass.hours": {"enabled": False}, "pattern.burst": {"limit": 1}}}

    with Service(tmp_path, edit, workers=1) as s:
        call = {"orig": "+33612000002", "dest": DEST}
        assert [s.request("POST", CHECK, call)[1]["screening"]["action"] for _ in range(2)] == ["allow", "reject"]
        s.config["screening"]["rules"]["pattern.burst"]["limit"] = 50
        s.write(s.config)
        s.wait_log("reloaded", 1)
        assert s.request("POST", CHECK, call)[1]["screening"]["action"] == "allow"  # a new Screen, new counts
        json.dumps(s.config)


def test_metrics_count_screening_per_action_and_rule(service):
    import time

    for _ in range(3):
        service.request("POST", CHECK, {"orig": BLOCKED, "dest": DEST})
    deadline = time.monotonic() + 15
    while True:  # the worker writes its counts out about once a second
        status, text = service.request("GET", "/metrics", auth=False)
        text = text.decode() if isinstance(text, bytes) else str(text)
        line = next((x for x in text.splitlines()
                     if x.startswith('manverify_screening_rules_total{outcome="reject",rule="list.block"}')), None)
        if line is not None and float(line.split()[-1]) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 200 and line is not None and float(line.split()[-1]) >= 3, text[-3000:]
    assert 'manverify_screening_decisions_total{action="reject"}' in text


def test_workers_share_the_counts_in_redis(tmp_path, redis_server):  # noqa: F811
    """Two workers, one redis-server: a burst is counted once (with local counters, each worker
    lets `limit` calls through). Calls that wait on the store go to the workers' threads."""
    def edit(config):
        config["screening"] = {
            "counters": {"backend": "redis", "url": redis_server.url, "key_secret": "serve-test-secret-0123456789",
                         "budget_ms": 200},
            "rules": {"canvass.hours": {"enabled": False}, "pattern.burst": {"limit": 5, "window": 600}}}

    with Service(tmp_path / "serve", edit, workers=2) as s:
        actions = []
        for _ in range(12):  # a fresh connection each: the workers take turns
            actions.append(s.request("POST", CHECK, {"orig": "+33612000003", "dest": DEST})[1]["screening"])
    assert [a["action"] for a in actions] == ["allow"] * 5 + ["reject"] * 7, actions
    assert not any(a["degraded"] for a in actions)


def test_without_a_policy_every_call_is_screened(tmp_path):
    def edit(config):
        del config["policy"]
        config["screening"] = {"rules": {"canvass.hours": {"enabled": False}}}

    with Service(tmp_path, edit, workers=1) as s:
        status, body = s.verify_atis(None, orig="+33162000001")  # no Identity: 428, no decision
        r = body["verificationResponse"]
        assert status == 200 and r["reasoncode"] == 428 and "decision" not in r
        assert r["screening"]["action"] == "tag" and r["screening"]["label"] == "canvassing"
