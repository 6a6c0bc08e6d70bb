"""cache_dir shared by worker processes: a cold start of many workers is one fetch per URL."""
import multiprocessing

from manverify.certs import CertStore

from .certserver import CertServer, Route, TLSLab
from .conftest import NOW


def _worker(args):
    root_pem, url, cache_dir, ca_pem, port, go = args
    store = CertStore(trust_anchors=[root_pem], cache_dir=cache_dir, allow_loopback=True, tls_ca=ca_pem,
                      https_ports=(port,), total_timeout=4.0)
    go.wait(10)  # every worker is ready: the misses are simultaneous
    out = store.credential(url, NOW)
    s = store.stats()
    return type(out).__name__, s["fetches"], s["disk_hits"]


def test_simultaneous_cold_workers_fetch_once(lab, tmp_path):
    tls = TLSLab()
    ctx = multiprocessing.get_context("spawn")
    with CertServer(tls) as srv, ctx.Manager() as manager:
        srv.routes["/op.pem"] = Route(lab.chain_pem, delay=0.5)
        go = manager.Event()
        args = (lab.root.pem, srv.url("/op.pem"), str(tmp_path), tls.ca_pem, srv.port, go)
        with ctx.Pool(4) as pool:
            pending = pool.map_async(_worker, [args] * 4)
            # let the spawned interpreters import and build their stores, then release them
            import time
            time.sleep(1.5)
            go.set()
            results = pending.get(30)
    assert all(r[0] == "Credential" for r in results), results
    assert srv.hits["/op.pem"] == 1, results
    assert sorted(r[1] for r in results) == [0, 0, 0, 1]  # one fetched, three read its result
    assert not list(tmp_path.glob(".tmp-*"))
