"""One background thread per process for the work that must happen about once a second but never
on the per-call path: writing counters out for Prometheus, looking for changed configuration.

Jobs are held weakly when they are bound methods (a dropped Verifier's reload watch stops with
it). The thread belongs to the process that started it: a process forked from it (Kamailio's
workers, a pre-fork server's) starts its own on the next add() or ensure(), and Python-level
forks restart it at once.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import Callable, List, Union

log = logging.getLogger("manverify.ticker")

INTERVAL = 1.0

_Job = Union[Callable[[], object], "weakref.WeakMethod"]
_jobs: List[_Job] = []
_lock = threading.Lock()
_pid = 0  # the process whose thread is running


def add(job: Callable[[], object]) -> None:
    """Run job() about once a second in this process (and in processes forked from it)."""
    ref = weakref.WeakMethod(job) if hasattr(job, "__self__") else job
    with _lock:
        _jobs.append(ref)
    ensure()


def ensure() -> None:
    """Start this process's thread if it is not running (cheap; call it after a fork)."""
    global _pid
    with _lock:
        if _pid == os.getpid() or not _jobs:
            return
        _pid = os.getpid()
    threading.Thread(target=_run, name="manverify-ticker", daemon=True).start()


def run_once() -> None:
    """Run every job now, in this thread (tests, and a last pass at exit)."""
    with _lock:
        jobs = list(_jobs)
    dead = []
    for ref in jobs:
        job = ref() if isinstance(ref, weakref.WeakMethod) else ref
        if job is None:
            dead.append(ref)
            continue
        try:
            job()
        except Exception:  # noqa: BLE001 — one job's trouble must not stop the others
            log.exception("manverify background job %r failed", job)
    if dead:
        with _lock:
            _jobs[:] = [j for j in _jobs if j not in dead]


def _run() -> None:
    me = os.getpid()
    while _pid == me:
        time.sleep(INTERVAL)
        run_once()


def _after_fork() -> None:
    global _pid
    _pid = 0
    ensure()


os.register_at_fork(after_in_child=_after_fork)
