"""End to end: SIPp → Kamailio (4 workers, manverify KEMI with `screening`) → SIPp UAS, the
workers sharing one real redis-server, all on 127.0.0.1 and stopped by PID.

A burst from one number gets 608 once the limit is passed, counted once across the workers (a
per-worker count would let limit × workers calls through); then redis-server is SIGKILLed in the
middle of a run and every call still gets its answer (screened on local counters), never a 500
nor a timeout.
"""
from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path

import pytest

from manverify import pki

from ..redishelp import REDIS_CLI, REDIS_SERVER, RedisServer
from . import stack

redis_py = pytest.importorskip("redis", reason="redis-py (extra manverify[screen]) is not installed")

pytestmark = pytest.mark.e2e

_MISSING = stack.missing_tools() + ([] if REDIS_SERVER and REDIS_CLI else ["redis-server (redis-tools)"])
if _MISSING:
    pytest.skip(f"end-to-end screening tests need {', '.join(_MISSING)} (apt-get install; .ci/run does)",
                allow_module_level=True)

ORIG, DEST = "+33612345678", "+33198765432"
LIMIT, BURST = 10, 25
WORKERS = 4
SCREEN_DEPS = ("redis", "holidays", "numpy")  # manverify[screen], into the venv Kamailio's python uses


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sip-screening")


@pytest.fixture(scope="module")
def venv(work) -> Path:
    venv = stack.build_venv(work / "venv")
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", *SCREEN_DEPS],
                         capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return venv


def _rows(case: str, calls, date: str):
    """CSV rows for uac_screening.xml: no Identity header (the policy lets those continue)."""
    return [[case, "X-No-Identity", "none", "http://127.0.0.1/none.pem", orig, dest, date] for orig, dest in calls]


def _worker_pids(log: str) -> set:
    return set(re.findall(r"\((\d+)\) INFO: .*manverify: \S+ (?:continue|reject)", log))


def test_burst_counted_once_across_workers_and_calls_survive_redis_dying(work, venv):
    (work / "root.pem").write_bytes(pki.lab_pki(spc="1001").root.pem)
    k_port, uas_port = stack.free_udp_port(), stack.free_udp_port()
    redis = RedisServer(work / "redis").start()
    try:
        # a budget well above loopback's round trip on a busy CI machine: a call over budget is
        # counted locally, and the burst's count would then be split
        screening = {
            "counters": {"backend": "redis", "url": redis.url, "key_secret": "e2e-only-secret-0123456789",
                         "budget_ms": 100},
            "rules": {"canvass.hours": {"enabled": False}, "pattern.flood": {"enabled": False},
                      "pattern.repeat": {"enabled": False}, "pattern.burst": {"limit": LIMIT, "window": 600}}}
        config = stack.write_manverify_config(
            work / "screening.json", venv=venv, root_pem=work / "root.pem", cache_dir=work / "cache",
            next_hop=f"sip:127.0.0.1:{uas_port}", policy={"role": "terminating", "require_identity": False},
            screening=screening)
        env = dict(stack.python_env(), MANVERIFY_KAMAILIO_CONFIG=str(config))
        defines = {"KEMI_SCRIPT": f'"{stack.EXAMPLES / "manverify_kemi.py"}"', "WORKERS": str(WORKERS),
                   "NEXT_HOP": f'"sip:127.0.0.1:{uas_port}"'}
        with stack.SippUAS(work, uas_port, name="screen-uas"), \
                stack.Kamailio(work, stack.EXAMPLES / "kamailio.cfg", k_port, defines, env=env, name="screen") as kam:
            date = stack.sip_date()
            # 1. a burst from one number, fast enough that several workers take calls
            csv = stack.write_csv(work / "burst.csv", _rows("burst", [(ORIG, DEST)] * BURST, date))
            stack.run_uac(work, k_port, csv, calls=BURST, rate=200, timeout=30, name="burst",
                          scenario="uac_screening.xml")
            burst = stack.uac_codes(work, "burst").get("burst", [])
            with redis_py.Redis(host="127.0.0.1", port=redis.port) as c:
                stored = [(k, c.dump(k)) for k in c.keys("*")]

            # 2. redis-server dies in the middle of a run of calls from other numbers
            others = [(f"+336120{i:05d}", f"+331987{i:05d}") for i in range(60)]
            csv = stack.write_csv(work / "outage.csv", _rows("outage", others, date))
            killer = threading.Timer(1.0, redis.kill)
            killer.start()
            try:
                stack.run_uac(work, k_port, csv, calls=len(others), rate=30, timeout=40, name="outage",
                              scenario="uac_screening.xml")
            finally:
                killer.join()
            outage = stack.uac_codes(work, "outage").get("outage", [])
            # 3. the burst number again, the store still down: answered, one way or the other
            csv = stack.write_csv(work / "after.csv", _rows("after", [(ORIG, DEST)] * 3, date))
            stack.run_uac(work, k_port, csv, calls=3, rate=10, timeout=30, name="after", scenario="uac_screening.xml")
            after = stack.uac_codes(work, "after").get("after", [])
            log = kam.log_text()
    finally:
        redis.stop()
    why = f"burst={burst}\noutage={outage}\nafter={after}\n--- kamailio log tail ---\n{log[-5000:]}"
    assert len(_worker_pids(log)) >= 2, "one worker took every call: the test shows nothing shared\n" + why
    assert sorted(burst) == [200] * LIMIT + [608] * (BURST - LIMIT), why
    assert stored, "no counter reached redis"
    for number in (ORIG, DEST):  # keyed hashes, never numbers in clear
        for digits in (number[1:], number[3:]):
            assert not any(digits.encode() in k + (v or b"") for k, v in stored), stored
    assert outage == [200] * len(others), why
    assert len(after) == 3 and set(after) <= {200, 608}, why
    assert "screening counters: store" in log and "unusable" in log, why  # the outage is logged
    assert "Traceback" not in log and "internal error" not in log, why
