"""The Prometheus export: in one process, and summed across worker processes as a real Prometheus
server scrapes it (Debian's `prometheus`, installed by .ci/run)."""
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from manverify import Signer, Verifier, pki

from .conftest import DEST, NOW, ORIG

prometheus_client = pytest.importorskip("prometheus_client", reason="prometheus_client (extra manverify[metrics]) is not installed")

from manverify import metrics  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _sample(name, **labels):
    return prometheus_client.REGISTRY.get_sample_value(name, labels) or 0.0


def test_register_exports_the_verdicts_and_certificate_events():
    lab = pki.lab_pki(spc="7777", now=NOW)
    v = Verifier(trust_anchors=[lab.root.pem], certificates={lab.x5u: lab.chain_pem})
    signer = Signer(lab.signer.key_pem, lab.x5u, clock=lambda: NOW)
    metrics.register()
    metrics.register()  # idempotent
    metrics.flush()  # what earlier tests' Verifiers counted is written out before the baseline
    before = {k: _sample(*k[:1], **dict(k[1:])) for k in (
        ("manverify_verifications_total", ("code", "none"), ("attest", "C")),
        ("manverify_spc_verifications_total", ("spc", "7777")),
        ("manverify_spc_failures_total", ("spc", "7777")),
        ("manverify_failures_total", ("reason", "dest-mismatch")),
        ("manverify_certificate_events_total", ("event", "loads")),
    )}
    good = signer.sign(ORIG, DEST, attest="C", iat=NOW)
    for _ in range(3):
        assert v.verify(good, orig=ORIG, dest=DEST, now=NOW).ok
    assert v.verify(good, orig=ORIG, dest="0198765433", now=NOW).sip_code == 438
    metrics.flush()
    after = {k: _sample(*k[:1], **dict(k[1:])) for k in before}
    assert [after[k] - before[k] for k in before] == [3, 4, 1, 1, 1]
    metrics.flush()  # nothing new: nothing added twice
    assert {k: _sample(*k[:1], **dict(k[1:])) for k in before} == after
    assert _sample("manverify_skipped_trust_anchors") == 0


def test_exporter_refuses_to_start_without_the_directory(monkeypatch, capsys):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert metrics.main(["--port", "0"]) == 2
    assert "PROMETHEUS_MULTIPROC_DIR" in capsys.readouterr().err


# ---------------------------------------------------------------- across processes, real Prometheus
WORKER = textwrap.dedent("""
    import json, sys
    import manverify.metrics
    from manverify import Verifier
    root, chain, x5u, calls, batch = sys.argv[1:6]
    v = Verifier(trust_anchors=[root], certificates={x5u: open(chain, "rb").read()}, threads=2)
    manverify.metrics.register()
    calls = json.load(open(calls))
    if batch == "batch":
        results = v.verify_many(calls)
    else:
        results = [v.verify(**c) for c in calls]
    print(sum(r.ok for r in results), sum(not r.ok for r in results))
    # the last second's counts are written by the atexit pass
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _query(port: int, promql: str):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return {tuple(sorted(x["metric"].items())): float(x["value"][1]) for x in body["data"]["result"]}


def _wait_http(url: str, proc, deadline: float) -> None:
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{proc.args[0]} exited with {proc.returncode}"
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


def test_prometheus_scrapes_the_sum_of_every_worker(tmp_path, lab, signer):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus (the Debian package `prometheus`) is not installed")
    mpdir = tmp_path / "mp"
    mpdir.mkdir()
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(mpdir), PYTHONPATH=str(ROOT))
    (tmp_path / "root.pem").write_bytes(lab.root.pem)
    (tmp_path / "chain.pem").write_bytes(lab.chain_pem)
    good = signer.sign(ORIG, DEST, attest="A", iat=NOW)
    # (passes, failures, path) per worker; 75 + 3 > 64 takes verify_many's threaded path
    plan = [(40, 2, "single"), (75, 3, "batch"), (25, 5, "single")]
    for i, (ok, bad, _) in enumerate(plan):
        calls = [dict(identity=good, orig=ORIG, dest=DEST, now=NOW)] * ok
        calls += [dict(identity=good, orig=ORIG, dest="0198765433", now=NOW)] * bad
        (tmp_path / f"calls{i}.json").write_text(json.dumps(calls))
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path / "root.pem"), str(tmp_path / "chain.pem"),
                                 lab.x5u, str(tmp_path / f"calls{i}.json"), how],
                                env=env, stdout=subprocess.PIPE, text=True)
               for i, (_, _, how) in enumerate(plan)]
    for w, (ok, bad, _) in zip(workers, plan):
        out, _ = w.communicate(timeout=120)
        assert w.returncode == 0 and out.split() == [str(ok), str(bad)]

    exporter_port, prom_port = _free_port(), _free_port()
    (tmp_path / "prometheus.yml").write_text(textwrap.dedent(f"""
        global: {{scrape_interval: 1s, evaluation_interval: 1s}}
        scrape_configs:
          - job_name: manverify
            static_configs: [{{targets: ["127.0.0.1:{exporter_port}"]}}]
    """))
    exporter = subprocess.Popen([sys.executable, "-m", "manverify.metrics", "--port", str(exporter_port)],
                                env=env, stdout=subprocess.DEVNULL)
    prom = subprocess.Popen([binary, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'data'}", "--log.level=warn",
                             f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        _wait_http(f"http://127.0.0.1:{exporter_port}/metrics", exporter, deadline)
        _wait_http(f"http://127.0.0.1:{prom_port}/-/ready", prom, deadline)
        total = sum(ok + bad for ok, bad, _ in plan)
        seen = {}
        while time.monotonic() < deadline:
            seen = _query(prom_port, "sum(manverify_verifications_total)")
            if seen:
                break
            time.sleep(0.5)
        assert list(seen.values()) == [total]
        by_code = _query(prom_port, "sum by (code, attest) (manverify_verifications_total)")
        assert by_code == {(("attest", "A"), ("code", "none")): sum(p[0] for p in plan),
                           (("attest", "A"), ("code", "438")): sum(p[1] for p in plan)}
        assert _query(prom_port, 'sum(manverify_spc_failures_total{spc="1001"})') == {(): 10.0}
        assert _query(prom_port, 'sum(manverify_failures_total{reason="dest-mismatch"})') == {(): 10.0}
        # each worker loaded the signer's certificate once
        assert _query(prom_port, 'sum(manverify_certificate_events_total{event="loads"})') == {(): 3.0}
    finally:
        for p in (prom, exporter):
            p.terminate()
        for p in (prom, exporter):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_crl_age_and_skipped_anchors_are_gauges(verifier, monkeypatch):
    v = Verifier(store=verifier.store)
    real = v.store.stats()
    metrics.register()
    monkeypatch.setattr(v.store, "stats", lambda: dict(real, crl_ages={"CN=MAN PA": 7200.0}))
    monkeypatch.setattr(v.store, "skipped_anchors", ["a version-1 root"], raising=False)
    metrics.flush()
    assert _sample("manverify_crl_age_seconds", issuer="CN=MAN PA") == 7200.0
    assert _sample("manverify_skipped_trust_anchors") >= 1
