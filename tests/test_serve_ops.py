"""`manverify serve` operated: configuration mistakes, /metrics summed over workers, SIGTERM with a
request in flight, reload on a changed file and on SIGHUP without a failed request, TLS client
certificates, no signer → no signing endpoint, and a server fault → 500."""
import asyncio
import datetime as dt
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

pytest.importorskip("uvicorn", reason="uvicorn (extra manverify[serve], Python >= 3.10) is not installed")

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from manverify.errors import ConfigError, EngineError  # noqa: E402
from manverify.serve import app as serve_app  # noqa: E402
from manverify.serve import lab, settings  # noqa: E402

from .certserver import TLSLab  # noqa: E402
from .servehelp import DEST, ORIG, Service  # noqa: E402


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "manverify", "serve", *args], capture_output=True, text=True,
                          timeout=60)


# ---------------------------------------------------------------------- configuration
@pytest.mark.parametrize("edit, message", [
    (lambda c: c["server"].pop("api_keys"), "no callers configured"),
    (lambda c: c["server"].update(api_keys=["short"]), "at least 16"),
    (lambda c: c["server"].update(listen="8080"), "host:port"),
    (lambda c: c["server"].update(workers=0), "server.workers"),
    (lambda c: c["server"].update(limits={"body": -1}), "server.limits.body"),
    (lambda c: c["server"].update(limits={"bodysize": 1}), "unknown key(s) in server.limits"),
    (lambda c: c["server"].update(tls={"cert": "/nonexistent.pem", "key": "/nonexistent.pem"}), "server.tls.cert"),
    (lambda c: c.update(signer={"key": "/nonexistent.key", "x5u": lab.LAB_X5U}), "signer.key"),
    (lambda c: c.update(signer={"key": c["signer"]["key"], "x5u": "ftp://x"}), "x5u"),
    (lambda c: c.update(polcy={}), "unknown configuration key(s) ['polcy']"),
    (lambda c: c.update(policy={"role": "judge"}), "role must be"),
    (lambda c: c.pop("trust_anchors"), "trust_anchors is required"),
])
def test_configuration_mistakes_exit_2_with_the_reason(tmp_path, edit, message):
    path = lab.write(tmp_path)
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    done = _cli("--config", str(path))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_unreadable_configuration_and_usage(tmp_path):
    done = _cli("--config", str(tmp_path / "missing.json"))
    assert done.returncode == 2 and "cannot read the manverify configuration" in done.stderr
    assert _cli().returncode == 2


def test_lab_mode_is_explicit():
    with pytest.raises(ConfigError, match="no callers configured"):
        settings.parse_server({})
    assert settings.parse_server({"lab": True}).api_keys == ()


def test_kamailio_and_serve_read_one_format(tmp_path):
    """The Kamailio integration accepts the shared keys of a serve configuration unchanged."""
    from manverify.integrations.kamailio import KemiApp, load_config

    config = load_config(lab.write(tmp_path))
    shared = {k: v for k, v in config.items() if k not in settings.OWN_KEYS}
    app = KemiApp(shared)
    assert app.policy.role == "terminating"
    with pytest.raises(ConfigError, match="unknown configuration key"):
        KemiApp(config)  # signer/server are serve's own keys


# ---------------------------------------------------------------------- metrics
def test_metrics_add_up_over_workers(tmp_path):
    with Service(tmp_path) as s:
        good, bad = s.signer.sign(ORIG, DEST), s.signer.sign(ORIG, "0198765499")
        for i in range(60):  # a new connection each: the workers share them out
            assert s.verify_atis(good if i % 3 else bad)[0] == 200
        deadline = time.monotonic() + 10
        while True:  # a worker writes its counts out about once a second
            text = s.request("GET", "/metrics", auth=False)[1].decode()
            samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("manverify_verifications_total{")}
            if sum(samples.values()) >= 60 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert samples == {'manverify_verifications_total{attest="A",code="none"}': 40.0,
                           'manverify_verifications_total{attest="A",code="438"}': 20.0}
        writers = [f for f in os.listdir(tmp_path / "metrics") if f.startswith("counter_")]
        assert len(writers) == 2  # both workers counted: the export is their sum


# ---------------------------------------------------------------------- SIGTERM
def test_sigterm_lets_the_request_in_flight_finish_then_exits_0(tmp_path):
    s = Service(tmp_path).start()
    body = json.dumps({"verificationRequest": {"from": {"tn": ORIG}, "to": {"tn": [DEST]},
                                               "identity": s.signer.sign(ORIG, DEST)}}).encode()
    conn = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    conn.sendall(b"POST /stir/v1/verification HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s" % (s.keys[0].encode(), len(body), body[:10]))
    time.sleep(0.5)  # the request is in flight: its head read, its body still coming
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    conn.sendall(body[10:])
    reply = b""
    while chunk := conn.recv(65536):  # the answer, then the connection closes (shutting down)
        reply += chunk
    conn.close()
    assert reply.startswith(b"HTTP/1.1 200 "), reply
    assert b"TN-Validation-Passed" in reply
    assert s.proc.wait(20) == 0
    s.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", s.port), timeout=1)


# ---------------------------------------------------------------------- reload
class Caller(threading.Thread):
    """Calls the service continuously on fresh connections; records every answer's status."""

    def __init__(self, service, identity):
        super().__init__(daemon=True)
        self.service, self.identity = service, identity
        self.statuses, self.errors = [], []
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            try:
                self.statuses.append(self.service.verify_atis(self.identity, auth=True)[0])
            except OSError as e:
                self.errors.append(repr(e))

    def stop(self):
        self.stopping.set()
        self.join(30)


def _until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_reload_on_configuration_change_without_a_failed_request(tmp_path):
    new_key = "new-key-after-reload-0123456789"
    with Service(tmp_path) as s:
        forged = s.signer.sign(ORIG, "0198765499")
        caller = Caller(s, s.signer.sign(ORIG, DEST))
        caller.start()
        config = dict(s.config, policy={"role": "monitoring"})
        config["server"] = dict(config["server"], api_keys=[s.keys[0], new_key])
        s.write(config)
        s.wait_log("reloaded from", 2)  # both workers
        # the new key works and the policy no longer rejects
        assert all(s.verify_atis(forged, auth=new_key)[0] == 200 for _ in range(8))
        assert all(s.verify_atis(forged)[1]["verificationResponse"]["decision"]["action"] == "continue"
                   for _ in range(8))
        broken = tmp_path / "serve.json"
        broken.write_text("{ half written")  # a bad file keeps the configuration in use
        s.wait_log("cannot be used, keeping the configuration in use", 2)
        assert s.verify_atis(forged, auth=new_key)[0] == 200
        caller.stop()
        assert caller.errors == [] and set(caller.statuses) == {200} and len(caller.statuses) > 20


@pytest.mark.parametrize("workers", [2, 1])
def test_sighup_reloads_without_a_failed_request(tmp_path, workers):
    """Two workers: uvicorn's supervisor replaces them. One: no supervisor; it reloads in place."""
    new_key = "key-after-sighup-0123456789abcdef"
    s = Service(tmp_path, lambda c: c["server"].update(reload=False), workers=workers).start()
    try:
        caller = Caller(s, s.signer.sign(ORIG, DEST))
        caller.start()
        config = dict(s.config)
        config["server"] = dict(config["server"], api_keys=[s.keys[0], new_key])
        s.write(config)
        time.sleep(2.5)
        assert s.verify_atis(None, auth=new_key)[0] == 401  # no file watching: not yet
        s.proc.send_signal(signal.SIGHUP)
        if workers == 2:
            s.wait_log("Application startup complete.", 4, 30)  # two new workers
        else:
            s.wait_log("reloaded from", 1)
        assert _until(lambda: all(s.verify_atis(None, auth=new_key)[0] == 200 for _ in range(8)))  # old ones gone
        time.sleep(0.5)
        caller.stop()
        assert caller.errors == [] and set(caller.statuses) == {200} and len(caller.statuses) > 20
    finally:
        assert s.stop() == 0


# ---------------------------------------------------------------------- TLS client certificates
def _client_cert(tls: TLSLab, tmp_path):
    now = dt.datetime.now(dt.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sbc-1")]))
            .issuer_name(tls.ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .sign(tls.ca_key, hashes.SHA256()))
    (tmp_path / "client.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "client.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                            serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption()))
    return str(tmp_path / "client.pem"), str(tmp_path / "client.key")


def test_tls_client_certificates_authenticate_callers(tmp_path):
    tls = TLSLab()
    (tmp_path / "ca.pem").write_bytes(tls.ca_pem)
    (tmp_path / "server.pem").write_bytes(tls.cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "server.key").write_bytes(tls.key.private_bytes(serialization.Encoding.PEM,
                                                                serialization.PrivateFormat.PKCS8,
                                                                serialization.NoEncryption()))

    def edit(c):
        c["server"].pop("api_keys")  # the client certificate is the only credential
        c["server"]["tls"] = {"cert": str(tmp_path / "server.pem"), "key": str(tmp_path / "server.key"),
                              "client_ca": str(tmp_path / "ca.pem")}

    s = Service(tmp_path, edit)
    s.proc = subprocess.Popen([sys.executable, "-m", "manverify", "serve", "--config", str(s.path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    s.log = open(os.devnull, "wb")
    try:
        url = f"https://127.0.0.1:{s.port}/stir/v1/verification"
        body = json.dumps({"verificationRequest": {"from": {"tn": ORIG}, "to": {"tn": [DEST]},
                                                   "identity": s.signer.sign(ORIG, DEST)}}).encode()
        with_cert = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        with_cert.load_cert_chain(*_client_cert(tls, tmp_path))
        without = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))

        def call(ctx):
            req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
                return r.status, json.loads(r.read())

        assert _until(lambda: _reachable(s.port), 30)
        status, out = call(with_cert)
        assert status == 200 and out["verificationResponse"]["verstat"] == "TN-Validation-Passed"
        with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)):
            call(without)
    finally:
        assert s.stop() == 0


def _reachable(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        time.sleep(1.0)  # past the workers' start-up
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------- no signer; a server fault
def test_no_signer_no_signing_endpoint(tmp_path):
    with Service(tmp_path, lambda c: c.pop("signer")) as s:
        status, out = s.request("POST", "/stir/v1/signing", {"signingRequest": {}})
        assert status == 404 and "no signer" in out["error"]


class _Faulty:
    class store:
        class options:
            fetch = False

    def verify(self, *a, **kw):
        raise EngineError("the engine refused a table of the wrong size")


def _asgi(app, method, path, body=b"", headers=()):
    sent = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)), *headers]}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], json.loads(sent[1]["body"])


def test_an_engine_fault_is_a_500_and_logged(tmp_path, caplog):
    setup = settings.build(json.loads(lab.write(tmp_path).read_text()), lambda c: _Faulty())
    app = serve_app.App(str(tmp_path / "serve.json"), setup)
    key = setup.config["server"]["api_keys"][0].encode()
    body = json.dumps({"verificationRequest": {"from": {"tn": ORIG}, "to": {"tn": [DEST]}}}).encode()
    status, out = _asgi(app, "POST", "/stir/v1/verification", body, [(b"authorization", b"Bearer " + key)])
    assert (status, out) == (500, {"error": "internal server error"})
    assert "engine refused" in caplog.text and "answering 500" in caplog.text


def test_the_example_configuration_is_one_serve_accepts(tmp_path):
    """examples/serve/serve.json with its paths pointed at a lab: every key known, every value valid."""
    from pathlib import Path

    example = json.loads((Path(__file__).resolve().parents[1] / "examples/serve/serve.json").read_text())
    labc = json.loads(lab.write(tmp_path).read_text())
    tls = TLSLab()
    for name, data in (("tls.pem", tls.cert.public_bytes(serialization.Encoding.PEM)),
                       ("tls.key", tls.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption())),
                       ("ca.pem", tls.ca_pem)):
        (tmp_path / name).write_bytes(data)
    example.update(trust_anchors=labc["trust_anchors"], certificates=labc["certificates"], crls=[],
                   cache_dir=str(tmp_path / "cache"), signer=labc["signer"])
    example["server"].update(api_keys=labc["server"]["api_keys"], metrics_dir=str(tmp_path / "metrics"),
                             tls={"cert": str(tmp_path / "tls.pem"), "key": str(tmp_path / "tls.key"),
                                  "client_ca": str(tmp_path / "ca.pem")})
    setup = settings.build(example)
    assert setup.server.workers == 4 and setup.server.client_ca and setup.signer is not None
    assert setup.server.limits == settings.LIMITS
