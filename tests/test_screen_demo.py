"""`manverify demo --screening`: every kind of abuse caught by its rule, no false positive."""
import subprocess
import sys

from manverify.screen import demo

from .redishelp import redis_server  # noqa: F401 - fixture


def _run(**kwargs):
    lines = []
    code = demo.run(out=lines.append, **kwargs)
    return code, "\n".join(lines)


def test_every_category_is_caught_by_its_rule_with_no_false_positive():
    code, table = _run()
    assert code == 0, table
    for category, expected in demo.CATEGORIES:
        row = next(line for line in table.splitlines() if line.startswith(category))
        if expected:
            assert expected in row.split("  ")[-1], row  # among the rules that fired
    assert "false positives on ordinary calls: 0 rule firings" in table


def test_counting_in_a_real_redis_gives_the_same_table(redis_server):
    local_code, local = _run()
    code, shared = _run(redis=redis_server.url)
    assert code == 0, shared

    def rows(table):  # the category lines: identical but for HyperLogLog's fanout estimates
        return [line for line in table.splitlines() if line.split("  ")[0] in dict(demo.CATEGORIES)
                and "fanout" not in line]

    assert rows(shared) == rows(local)


def test_the_command_line_runs_it():
    done = subprocess.run([sys.executable, "-m", "manverify", "demo", "--screening"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every category was caught by its rule" in done.stdout
    refused = subprocess.run([sys.executable, "-m", "manverify", "demo", "--redis", "redis://127.0.0.1:1"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "--redis goes with --screening" in refused.stderr
