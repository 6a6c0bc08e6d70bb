"""Two `manverify serve` instances behind HAProxy (Debian package, installed by .ci/run) on
loopback: one is killed under steady load. Only requests in flight on it may fail, none once
HAProxy's health check has noticed, and the survivor's /metrics account for every call it answered."""
import http.client
import json
import shutil
import socket
import subprocess
import threading
import time

import pytest

pytest.importorskip("uvicorn", reason="uvicorn (extra manverify[serve], Python >= 3.10) is not installed")
HAPROXY = shutil.which("haproxy") or shutil.which("/usr/sbin/haproxy")
if HAPROXY is None:
    pytest.skip("haproxy is not installed (apt-get install haproxy; .ci/run does)", allow_module_level=True)

from .servehelp import DEST, ORIG, Service, free_port  # noqa: E402

CHECK_MS = 200  # HAProxy's health check interval; 2 failed checks mark a server down
CLIENTS = 4


def _haproxy_config(port, backends):
    servers = "\n".join(f"    server {name} 127.0.0.1:{p} check inter {CHECK_MS}ms fall 2 rise 2"
                        for name, p in backends.items())
    return f"""global
    maxconn 1000
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend sti
    bind 127.0.0.1:{port}
    default_backend manverify
backend manverify
    balance roundrobin
    option httpchk GET /healthz
    retries 2
    option redispatch 1
    # No request goes out on an idle connection to a server that may have just died: a POST sent
    # on one cannot be retried, and the client would see a failure that was never in flight.
    http-reuse never
    http-response set-header X-Served-By %s
{servers}
"""


class Load(threading.Thread):
    """One client calling through HAProxy on a kept-alive connection: (start, end, status, server)."""

    def __init__(self, port, key, identity):
        super().__init__(daemon=True)
        self.port, self.key, self.identity = port, key, identity
        self.calls = []
        self.stopping = threading.Event()

    def run(self):
        body = json.dumps({"verificationRequest": {"from": {"tn": ORIG}, "to": {"tn": [DEST]},
                                                   "identity": self.identity}})
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"}
        conn = None
        while not self.stopping.is_set():
            start = time.monotonic()
            try:
                conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("POST", "/stir/v1/verification", body, headers)
                r = conn.getresponse()
                answer = r.read()  # always read whole, or the next request on conn finds it unread
                ok = r.status == 200 and b"TN-Validation-Passed" in answer
                self.calls.append((start, time.monotonic(), r.status if ok else -r.status, r.getheader("X-Served-By")))
            except (OSError, http.client.HTTPException) as e:
                self.calls.append((start, time.monotonic(), repr(e), None))
                if conn is not None:
                    conn.close()
                conn = None


def _verifications(service):
    text = service.request("GET", "/metrics", auth=False)[1].decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("manverify_verifications_total{"))


def test_killing_one_instance_under_load(tmp_path):
    for name in "ab":
        (tmp_path / name).mkdir()
    a = Service(tmp_path / "a", workers=1).start()
    key = a.keys[0]

    def same_key(config):
        config["server"]["api_keys"] = [key]

    b = Service(tmp_path / "b", same_key, workers=1)
    b.config["trust_anchors"], b.config["certificates"] = a.config["trust_anchors"], a.config["certificates"]
    b.write(b.config)  # b trusts a's lab root: the same calls verify on both
    b.start()
    port = free_port()
    (tmp_path / "haproxy.cfg").write_text(_haproxy_config(port, {"a": a.port, "b": b.port}))
    proxy = subprocess.Popen([HAPROXY, "-f", str(tmp_path / "haproxy.cfg"), "-db"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    loads = []
    try:
        deadline = time.monotonic() + 10
        while a.request("GET", "/healthz", auth=False)[0] != 200 or not _up(port):
            assert time.monotonic() < deadline, "HAProxy did not come up"
            time.sleep(0.1)
        time.sleep(3 * CHECK_MS / 1000)  # both servers seen up
        loads = [Load(port, key, a.signer.sign(ORIG, DEST)) for _ in range(CLIENTS)]
        for t in loads:
            t.start()
        time.sleep(1.5)
        killed_at = time.monotonic()
        a.kill()
        gone_at = _refused_from(a.port)
        time.sleep(2.5)
        for t in loads:
            t.stopping.set()
        for t in loads:
            t.join(10)
    finally:
        proxy.terminate()
        proxy.wait(10)
        if a.proc.poll() is None:
            a.kill()
        a.log.close()
    try:
        calls = [c for t in loads for c in t.calls]
        failed = [c for c in calls if c[2] != 200]
        noticed = killed_at + 3 * CHECK_MS / 1000 + 0.2  # two failed checks, and one to spare
        print(f"\n{len(calls)} calls, {len(failed)} failed (in flight), port refused {gone_at - killed_at:.3f} s "
              f"and last failure "
              f"{max((c[1] for c in failed), default=killed_at) - killed_at:.3f} s after the kill")
        assert sum(1 for c in calls if c[3] == "a" and c[2] == 200) > 50
        # In flight on the killed instance: sent before its port refused connections. Its worker dies
        # a few ms after the supervisor, and a connection the kernel queues meanwhile is lost with it
        # (a POST sent on it cannot be retried); one begun later is refused, and HAProxy redispatches.
        assert all(c[0] < gone_at for c in failed), (gone_at, failed)
        assert all(c[1] <= noticed for c in failed), failed  # none once HAProxy knew
        assert sum(1 for c in calls if c[0] > noticed) > 100  # and service went on
        answered_by_b = sum(1 for c in calls if c[3] == "b" and c[2] == 200)
        deadline = time.monotonic() + 10
        while _verifications(b) < answered_by_b and time.monotonic() < deadline:
            time.sleep(0.2)  # the worker writes its counts out about once a second
        assert _verifications(b) == answered_by_b
    finally:
        assert b.stop() == 0


def _refused_from(port, limit=5.0):
    """The moment a connection to port is refused: the killed instance's listening socket is gone."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
        except ConnectionRefusedError:
            return time.monotonic()
        except OSError:
            pass
        time.sleep(0.002)
    raise AssertionError(f"port {port} still accepts {limit} s after the kill")


def _up(port):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
