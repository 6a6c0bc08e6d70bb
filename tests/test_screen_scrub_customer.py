"""manverify scrub --customer: the customer's red lists, refusals and repeat limit, read through
Screen.outbound_status_many (the originating side), in-process and through the command with the
counters in a real redis-server shared with the calls."""
import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from manverify.errors import UsageError
from manverify.screen import scrub as sc
from manverify.screen.engine import Screen
from .redishelp import redis_server  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[1]
TUESDAY_11 = dt.datetime(2026, 12, 8, 11, 0, tzinfo=ZoneInfo("Europe/Paris")).timestamp()
RANGE_NUMBER = "0162000001"  # acme's canvassing number
SECRET = "s" * 32
CONTACTS = ("id;tel\n1;0611111111\n2;0633000000\n3;0698765401\n4;0698765402\n5;0698765403\n"
            "6;0698765401\n7;+33 6 98 76 54 04\n")


def _config(tmp_path, counters=None):
    (tmp_path / "red.txt").write_text("# acme's red list\n0633*\n")
    (tmp_path / "bloctel.txt").write_text("0611111111\n")
    return {"reload": False, "counters": counters or {"backend": "local"},
            "customers": {"acme": {"canvasser": True, "numbers": ["0162000000-0162000999"],
                                   "opposition": ["red.txt"]}}}


def _history(screen):
    """0698765402 refused a call; 0698765403 was called 4 times (the limit); 0698765404 once."""
    t = TUESDAY_11
    screen.check(RANGE_NUMBER, "0698765402", now=t, direction="outbound", customer="acme")
    screen.feedback(RANGE_NUMBER, "0698765402", refused=True, customer="acme", now=t + 1)
    for i in range(4):
        screen.check(RANGE_NUMBER, "0698765403", now=t + 2 + i, direction="outbound", customer="acme")
    screen.check(RANGE_NUMBER, "0698765404", now=t + 10, direction="outbound", customer="acme")


def _expect(out, summary, bloctel):
    assert [line.split(";")[0] for line in out.splitlines()] == ["id", "3", "7"]
    assert summary["removed"]["customer"] == {"customer opposition": 1, "refused": 1, "repeat limit": 1}
    assert summary["removed"]["by_file"] == {bloctel: 1} and summary["removed"]["duplicates"] == 1


def test_the_customers_rules_in_process(tmp_path):
    screen = Screen.from_dict(_config(tmp_path), tmp_path)
    _history(screen)
    out = io.StringIO()
    s = sc.scrub(io.StringIO(CONTACTS, newline=""), out, [sc.load_opposition(tmp_path / "bloctel.txt")],
                 status=sc.customer_status(screen, "acme", now=TUESDAY_11 + 60))
    _expect(out.getvalue(), s.to_dict(), str(tmp_path / "bloctel.txt"))
    with pytest.raises(UsageError, match="customer"):
        sc.customer_status(screen, "nobody")


def test_a_disabled_rule_removes_nothing(tmp_path):
    config = dict(_config(tmp_path), rules={"canvass.repeat": {"enabled": False}, "canvass.refused": {"enabled": False}})
    screen = Screen.from_dict(config, tmp_path)
    _history(screen)
    status = sc.customer_status(screen, "acme", now=TUESDAY_11 + 60)
    assert status(["33698765402", "33698765403", "33633000000"]) == [None, None, "customer opposition"]


def test_the_command_reads_the_counters_the_calls_wrote(tmp_path, redis_server):
    counters = {"backend": "redis", "url": redis_server.url, "key_secret": SECRET}
    config = _config(tmp_path, counters)
    screen = Screen.from_dict(config, tmp_path)
    try:
        _history(screen)
    finally:
        screen.close()
    (tmp_path / "serve.json").write_text(json.dumps({"screening": config}))
    (tmp_path / "c.csv").write_text(CONTACTS)
    p = subprocess.run([sys.executable, "-m", "manverify", "scrub", "c.csv", "--opposition", "bloctel.txt",
                        "--customer", "acme", "--config", "serve.json", "--summary", "s.json"],
                       capture_output=True, text=True, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                       timeout=120)
    assert p.returncode == 0, p.stderr
    _expect(p.stdout, json.loads((tmp_path / "s.json").read_text()), "bloctel.txt")
    assert "customer opposition 1, refused 1, repeat limit 1" in p.stderr
    p = subprocess.run([sys.executable, "-m", "manverify", "scrub", "c.csv", "--customer", "nobody",
                        "--config", "serve.json"], capture_output=True, text=True, cwd=tmp_path,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert p.returncode == 2 and "nobody" in p.stderr and p.stdout == ""
