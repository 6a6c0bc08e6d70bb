"""Caller look-up and user reports over real HTTP (`manverify serve`, two workers sharing a real
redis-server) and from the command line (`manverify lookup`): answers, 201/200, 400s, the 429 of a
report flood, keys, and no number or reporter in clear in the store afterwards."""
import json
import os
import subprocess
import sys
import time

import pytest
import redis

pytest.importorskip("uvicorn", reason="uvicorn (extra manverify[serve], Python >= 3.10) is not installed")

from .redishelp import REDIS_SERVER, RedisServer, redis_server  # noqa: E402,F401 - redis_server: a fixture
from .servehelp import DEST, Service  # noqa: E402

SECRET = "lookup-secret-" + "x" * 20
CANVASSER = "+33162000001"
LIMIT = 5
REPORTERS = ["alice@example.org", "bob@example.org", "carol@example.org"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    if REDIS_SERVER is None:
        pytest.skip("redis-server not installed (CI installs the Debian package)")
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


def screening(store):
    return {"counters": {"backend": "redis", "url": store.url, "key_secret": SECRET, "budget_ms": 500},
            "lookup": {"report_limit": LIMIT}, "rules": {"canvass.hours": {"enabled": False}}}


@pytest.fixture(scope="module")
def service(tmp_path_factory, store):
    def edit(config):
        config["screening"] = screening(store)

    with Service(tmp_path_factory.mktemp("serve-lookup"), edit, workers=2) as s:
        yield s


def cli(tmp_path, store, *args):
    path = tmp_path / "screening.json"
    path.write_text(json.dumps({"screening": screening(store)}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.run([sys.executable, "-m", "manverify", "lookup", *args, "--config", str(path)],
                          capture_output=True, text=True, timeout=60, env=env)


def test_a_look_up_over_http(service):
    for path in ("/numbers/v1/+33162000001", "/numbers/v1/%2B33162000001", "/numbers/v1/0162000001"):
        status, body = service.request("GET", path)
        assert status == 200, body
        assert (body["number"], body["class"], body["label"], body["score"]) == (CANVASSER, "canvassing",
                                                                                 "canvassing", 20)
        assert body["signals"] == [{"signal": "plan.canvassing", "value": "canvassing", "weight": 20}]
        assert not body["degraded"]


def test_head_is_a_look_up_without_its_body(service):
    conn = service.connection()
    try:
        conn.request("HEAD", "/numbers/v1/0162000001", headers={"Authorization": f"Bearer {service.keys[0]}"})
        r = conn.getresponse()
        assert r.status == 200 and r.read() == b"" and int(r.getheader("Content-Length")) > 100
    finally:
        conn.close()


def test_verified_calls_show_in_the_look_up(service):
    orig = "+33611000001"
    for _ in range(3):
        assert service.verify_atis(service.signer.sign(orig, DEST), orig=orig)[0] == 200
    status, body = service.request("GET", f"/numbers/v1/{orig}")
    assert status == 200 and body["activity"]["calls_30d"] == 3
    assert body["verified"] == {"calls": 3, "verified": 3, "share": 1.0, "attestation": {"A": 3, "B": 0, "C": 0},
                                "failed": 0, "unsigned": 0}


def test_reports_over_http_move_the_label_once_per_reporter(service):
    path = "/numbers/v1/+33611000002/reports"
    answers = [service.request("POST", path, {"category": "scam", "reporter": r}) for r in REPORTERS]
    assert [status for status, _ in answers] == [201, 201, 201]
    last = answers[-1][1]
    assert (last["label"], last["score"], last["reports"]["scam"], last["counted"]) == ("fraud", 60, 3, True)
    status, again = service.request("POST", path, {"category": "silent", "reporter": REPORTERS[0]})
    assert status == 200 and not again["counted"] and again["reports"]["total"] == 3
    status, body = service.request("GET", "/numbers/v1/0611000002")  # any worker: the store is shared
    assert status == 200 and (body["label"], body["score"]) == ("fraud", 60)


def test_a_report_flood_is_a_429(service):
    for i in range(LIMIT):
        assert service.request("POST", f"/numbers/v1/+336110001{i:02d}/reports",
                               {"category": "other", "reporter": "flooder"})[0] == 201
    conn = service.connection()
    try:
        conn.request("POST", "/numbers/v1/+33611000199/reports", json.dumps({"category": "other", "reporter": "flooder"}),
                     {"Content-Type": "application/json", "Authorization": f"Bearer {service.keys[0]}"})
        r = conn.getresponse()
        body = json.loads(r.read())
    finally:
        conn.close()
    assert r.status == 429 and "report_limit" in body["error"] and int(r.getheader("Retry-After")) >= 1
    assert service.request("GET", "/numbers/v1/+33611000199")[1]["reports"]["total"] == 0


@pytest.mark.parametrize("method, path, body, status, says", [
    ("GET", "/numbers/v1/hello", None, 400, "number"),
    ("GET", "/numbers/v1/%00", None, 400, "number"),
    ("POST", "/numbers/v1/junk/reports", {"category": "scam", "reporter": "a"}, 400, "number"),
    ("POST", "/numbers/v1/0611000003/reports", {"category": "spam", "reporter": "a"}, 400, "category"),
    ("POST", "/numbers/v1/0611000003/reports", {"category": "scam", "reporter": ""}, 400, "reporter"),
    ("POST", "/numbers/v1/0611000003/reports", {"category": "scam"}, 400, "reporter"),
    ("POST", "/numbers/v1/0611000003/reports", {"category": "scam", "reporter": "a", "x": 1}, 400, "unknown"),
    ("POST", "/numbers/v1/0611000003/reports", ["scam"], 400, "object"),
    ("POST", "/numbers/v1/0611000003/reports", b"{not json", 400, "JSON"),
    ("POST", "/numbers/v1/0611000003", {"category": "scam", "reporter": "a"}, 405, "GET"),
    ("GET", "/numbers/v1/0611000003/reports", None, 405, "POST"),
    ("GET", "/numbers/v1/", None, 404, "no such"),
    ("GET", "/numbers/v1/06/11", None, 404, "no such"),
])
def test_garbage_is_answered_with_an_error(service, method, path, body, status, says):
    got, answer = service.request(method, path, body)
    assert got == status and says in answer["error"], answer
    assert service.request("GET", "/numbers/v1/0611000003")[1]["reports"]["total"] == 0


def test_the_same_keys_as_every_endpoint(service):
    assert service.request("GET", "/numbers/v1/0611000004", auth=False)[0] == 401
    assert service.request("GET", "/numbers/v1/0611000004", auth="not-a-key-of-ours-at-all")[0] == 401
    assert service.request("POST", "/numbers/v1/0611000004/reports", {"category": "scam", "reporter": "a"},
                           auth=False)[0] == 401


def test_the_command_line_shares_the_store_with_the_service(service, store, tmp_path):
    r = cli(tmp_path, store, "0611000005", "--report", "silent", "--reporter", "dave")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["counted"] is True
    r = cli(tmp_path, store, "+33 6 11 00 00 05")
    assert r.returncode == 0 and json.loads(r.stdout)["reports"]["silent"] == 1
    assert service.request("GET", "/numbers/v1/0611000005")[1]["reports"]["silent"] == 1


@pytest.mark.parametrize("args, says", [
    (("hello",), "number"),
    (("0611000006", "--report", "scam"), "--reporter"),
    (("0611000006", "--report", "scam", "--reporter", ""), "reporter"),
    (("0611000006", "--report", "spam", "--reporter", "x"), "invalid choice"),
])
def test_the_command_line_exits_2_on_usage_errors(store, tmp_path, args, says):
    r = cli(tmp_path, store, *args)
    assert r.returncode == 2 and says in r.stderr and r.stdout == ""


def test_a_service_without_screening_has_no_numbers(tmp_path):
    with Service(tmp_path, workers=1) as s:
        assert s.request("GET", "/numbers/v1/0611000007")[0] == 404


def test_no_number_and_no_reporter_in_clear_in_the_store(service, store):
    # after the tests above (module order): reports, look-ups and verified calls went through both workers
    r = redis.Redis.from_url(store.url)
    dumped = []
    for key in r.scan_iter(count=1000):
        dumped.append(key)
        dumped += [x for kv in r.hgetall(key).items() for x in kv] if r.type(key) == b"hash" else [r.dump(key)]
    assert len(dumped) > 50
    blob = b"\n".join(dumped)
    numbers = ["611000001", "611000002", "611000005", "611000100", "162000001"]
    forms = {f.encode() for n in numbers for f in (n, "0" + n, "33" + n)}
    forms |= {r.encode() for r in REPORTERS + ["flooder", "dave"]} | {b"alice", b"example.org"}
    assert not [f for f in forms if f in blob]


def test_a_stalled_store_holds_a_look_up_one_budget_at_most(tmp_path, redis_server):  # noqa: F811
    # look-ups run on the event loop: a store that stops answering must cost one budget, then none
    def edit(config):
        config["screening"] = {"counters": {"backend": "redis", "url": redis_server.url, "key_secret": SECRET,
                                            "budget_ms": 50, "probe_interval_s": 10}}

    with Service(tmp_path / "serve", edit, workers=1) as s:
        conn = s.connection()
        assert not s.request("GET", "/numbers/v1/0611000008", conn=conn)[1]["degraded"]
        assert redis_server.cli("CLIENT", "PAUSE", "5000", "ALL").strip() == "OK"
        took = []
        for _ in range(5):
            start = time.monotonic()
            status, body = s.request("GET", "/numbers/v1/0611000008", conn=conn)
            took.append(time.monotonic() - start)
            assert status == 200 and body["degraded"]
        assert took[0] < 1.0 and max(took[1:]) < 0.2, took  # one budget (and a busy machine's slack)
        assert s.request("GET", "/healthz", auth=False)[0] == 200
        conn.close()
