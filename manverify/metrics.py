"""Prometheus export of every Verifier in the process, through prometheus_client (extra "metrics").

    import manverify.metrics
    manverify.metrics.register()        # once per process; in Kamailio, in each worker

One process: the metrics join prometheus_client's default registry; serve it as usual
(prometheus_client.start_http_server, or a web framework's /metrics).

Several worker processes (Kamailio's children, a pre-fork server): prometheus_client's
multiprocess mode. Give every process the same PROMETHEUS_MULTIPROC_DIR (an empty directory,
emptied at each start) before it imports prometheus_client; each worker calls register(); one
exporter process serves the sum of every worker's files:

    PROMETHEUS_MULTIPROC_DIR=/run/manverify/metrics python -m manverify.metrics --port 9464

A worker is never scraped itself, so it cannot count at scrape time. The per-call path only
bumps Verifier.stats()' plain counters; a background thread (manverify.ticker) writes their
increase since the last pass into prometheus_client's values about once a second, and once more
at exit. A reload that swaps a Verifier's certificate store starts that store's counters at zero:
the export adds per store, so its totals keep growing.

Screening (manverify.screen) is exported the same way for every Screen given to track_screen()
(the Kamailio integration and `manverify serve` do it): its stats() counters, as
manverify_screening_decisions_total{action}, manverify_screening_rules_total{rule, outcome}
(outcome: the rule's action, or "reported" when it only reported), manverify_screening_degraded_total
(calls screened on local counters because the shared store was down or slow),
manverify_screening_errors_total (calls let through unscreened by a fault of screening's own) and
manverify_screening_reloads_total{data, outcome} (data "lists" or "majnum"; outcome "applied" or
"refused": a refused file keeps the data in use).
"""
from __future__ import annotations

import argparse
import atexit
import os
import sys
import threading
import time
import weakref
from typing import Dict, Optional

from . import stats, ticker

try:
    import prometheus_client
    from prometheus_client import Counter, Gauge
except ImportError:  # pragma: no cover - depends on the environment
    prometheus_client = None

# CertStore.stats() counters exported as events of manverify_certificate_events_total
CERT_EVENTS = ("hits", "misses", "negative_hits", "loads", "fetches", "fetch_errors", "disk_hits",
               "refreshes", "crl_fetches", "crl_fail_open", "rejections")

_lock = threading.Lock()
_metrics: Optional["_Metrics"] = None
# Every Screen to export, weakly: an export never keeps a Screen alive.
_screens: "weakref.WeakSet" = weakref.WeakSet()


def track_screen(screen) -> None:
    """Export this Screen's counters (manverify.screen.Screen) from now on; works without
    prometheus_client (nothing is exported until register())."""
    _screens.add(screen)


def _require() -> None:
    if prometheus_client is None:
        raise ImportError("manverify.metrics needs prometheus_client: pip install 'manverify[metrics]'")


class _Metrics:
    """The exported series and, per counted object, what was already written out."""

    def __init__(self, registry):
        kw = {"registry": registry}
        self.verifications = Counter(
            "manverify_verifications", "Calls verified, by SIP code (\"none\": passed) and attestation",
            ("code", "attest"), **kw)
        self.failures = Counter("manverify_failures", "Failed calls by reason (a fixed slug)", ("reason",), **kw)
        self.spc_calls = Counter("manverify_spc_verifications",
                                 "Calls by the signer's SPC (\"none\": signer unknown, \"other\": beyond the cap)",
                                 ("spc",), **kw)
        self.spc_failures = Counter("manverify_spc_failures", "Failed calls by the signer's SPC", ("spc",), **kw)
        self.cert_events = Counter("manverify_certificate_events",
                                   "Certificate cache and fetch events (CertStore.stats())", ("event",), **kw)
        self.cert_rejections = Counter("manverify_certificate_rejections",
                                       "Signer certificates refused, by reason", ("reason",), **kw)
        self.crl_age = Gauge("manverify_crl_age_seconds", "Age (now - thisUpdate) of the CRL in use, per issuer",
                             ("issuer",), multiprocess_mode="mostrecent", **kw)
        self.skipped_anchors = Gauge("manverify_skipped_trust_anchors",
                                     "Configured trust anchors that could not be used",
                                     multiprocess_mode="mostrecent", **kw)
        self.screen_decisions = Counter("manverify_screening_decisions", "Screened calls by the action taken",
                                        ("action",), **kw)
        self.screen_rules = Counter("manverify_screening_rules",
                                    "Screening rules that fired, by rule id and outcome (its action, or reported)",
                                    ("rule", "outcome"), **kw)
        self.screen_degraded = Counter("manverify_screening_degraded",
                                       "Calls screened on local counters: the shared store was down or slow", **kw)
        self.screen_errors = Counter("manverify_screening_errors",
                                     "Calls let through unscreened by a fault of screening's own", **kw)
        self.screen_reloads = Counter("manverify_screening_reloads",
                                      "Screening data reloads (lists, MAJNUM file), applied or refused",
                                      ("data", "outcome"), **kw)
        self._seen: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # counted object -> last totals
        self._flush_lock = threading.Lock()

    def flush(self) -> None:
        with self._flush_lock:
            ages: Dict[str, float] = {}
            skipped = 0
            for v in stats.verifiers():
                self._verdicts(v._stats)
                store = v.store
                certs = store.stats()
                self._certs(store, certs)
                for issuer, age in (certs.get("crl_ages") or {}).items():
                    ages[issuer] = max(age, ages.get(issuer, 0.0))
                skipped += len(getattr(store, "skipped_anchors", ()) or ())
            for issuer, age in ages.items():
                self.crl_age.labels(issuer).set(age)
            self.skipped_anchors.set(skipped)
            for screen in list(_screens):
                self._screening(screen)

    def _delta(self, obj, totals: Dict) -> Dict:
        last = self._seen.get(obj, {})
        self._seen[obj] = totals
        return {k: n - last.get(k, 0) for k, n in totals.items() if n != last.get(k, 0)}

    def _verdicts(self, st: stats.Stats) -> None:
        for key, n in self._delta(st, st.counts()).items():
            code, attest, spc = key[:3]
            self.verifications.labels(stats.NONE if code is None else str(code), attest or stats.NONE).inc(n)
            self.spc_calls.labels(spc or stats.NONE).inc(n)
            if code is not None:
                self.failures.labels(key[3]).inc(n)
                self.spc_failures.labels(spc or stats.NONE).inc(n)

    def _screening(self, screen) -> None:
        st = screen.stats()
        totals: Dict = {("action", a): n for a, n in st["by_action"].items()}
        totals.update((("rule", r, o), n) for r, outcomes in st["by_rule"].items() for o, n in outcomes.items())
        totals[("degraded",)] = st["degraded"]
        totals[("error",)] = st["errors"]
        for what, r in st["reloads"].items():  # the list files' watches
            data = "lists" if "list" in what else what
            totals[("reload", data, "applied")] = totals.get(("reload", data, "applied"), 0) + r["reloads"]
            totals[("reload", data, "refused")] = totals.get(("reload", data, "refused"), 0) + r["failures"]
        if "majnum" in st:  # the first table counts among its loads: a reload is every later one
            totals[("reload", "majnum", "applied")] = st["majnum"]["loads"] - 1
            totals[("reload", "majnum", "refused")] = st["majnum"]["refusals"]
        for key, n in self._delta(screen, totals).items():
            if key[0] == "action":
                self.screen_decisions.labels(key[1]).inc(n)
            elif key[0] == "rule":
                self.screen_rules.labels(key[1], key[2]).inc(n)
            elif key[0] == "degraded":
                self.screen_degraded.inc(n)
            elif key[0] == "error":
                self.screen_errors.inc(n)
            else:
                self.screen_reloads.labels(key[1], key[2]).inc(n)

    def _certs(self, store, certs: Dict) -> None:
        totals = {("event", e): certs.get(e, 0) for e in CERT_EVENTS}
        totals.update((("reason", r), n) for r, n in (certs.get("rejections_by_reason") or {}).items())
        for (kind, name), n in self._delta(store, totals).items():
            (self.cert_events if kind == "event" else self.cert_rejections).labels(name).inc(n)


def register(registry=None) -> None:
    """Export every Verifier of this process (those built before and after the call).

    Idempotent per process. `registry`: a prometheus_client CollectorRegistry (default: the
    library's global one; in multiprocess mode the values go to PROMETHEUS_MULTIPROC_DIR either
    way)."""
    global _metrics
    _require()
    with _lock:
        if _metrics is None:
            _metrics = _Metrics(registry if registry is not None else prometheus_client.REGISTRY)
            ticker.add(flush)
            atexit.register(flush)
    ticker.ensure()  # after a fork, this process's own thread


def flush() -> None:
    """Write the counters' increase since the last pass into prometheus_client now."""
    if _metrics is not None:
        _metrics.flush()


def multiprocess_registry():
    """A registry summing every process's files in PROMETHEUS_MULTIPROC_DIR (for an exporter)."""
    _require()
    from prometheus_client import CollectorRegistry, multiprocess

    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        raise RuntimeError("PROMETHEUS_MULTIPROC_DIR is not set: it names the directory the workers write")
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m manverify.metrics",
                                description="Serve the sum of every worker's manverify metrics "
                                            "(PROMETHEUS_MULTIPROC_DIR) over HTTP for Prometheus.")
    p.add_argument("--port", type=int, default=9464)
    p.add_argument("--addr", default="127.0.0.1")
    args = p.parse_args(argv)
    try:
        registry = multiprocess_registry()
    except (ImportError, RuntimeError) as e:
        print(f"manverify.metrics: {e}", file=sys.stderr)
        return 2
    prometheus_client.start_http_server(args.port, addr=args.addr, registry=registry)
    print(f"manverify.metrics: serving {os.environ['PROMETHEUS_MULTIPROC_DIR']} on "
          f"http://{args.addr}:{args.port}/metrics", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
