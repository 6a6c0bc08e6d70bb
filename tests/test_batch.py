"""`manverify verify --batch`: bad lines, ids, exit codes, a closed pipe, progress on a terminal."""
import io
import json
import os
import pty
import select
import subprocess
import sys
import time

import pytest

from manverify import batch
from manverify.cli import EXIT_CLOSED_PIPE, main
from manverify.verifier import Verifier


@pytest.fixture
def files(lab, tmp_path):
    (tmp_path / "root.pem").write_bytes(lab.root.pem)
    (tmp_path / "chain.pem").write_bytes(lab.chain_pem)
    return tmp_path


def _args(lab, d, calls_file):
    return ["verify", "--trust", str(d / "root.pem"), "--cert", f"{lab.x5u}={d / 'chain.pem'}",
            "--batch", str(calls_file)]


def _call(signer, i, at, **extra):
    call = {"id": f"call-{i}", "identity": signer.sign("0612345678", "0198765432", iat=at),
            "orig": "0612345678", "dest": "0198765432", "now": at}
    call.update(extra)
    return call


def _records(out):
    return [json.loads(x) for x in out.splitlines()]


def test_truncated_line_1500_of_2001(lab, signer, files, now, capsys, monkeypatch):
    """The issue's run: every other call still verified, through verify_many, in order; exit 1."""
    header = signer.sign("0612345678", "0198765432", iat=now)
    lines = [json.dumps({"id": i, "identity": header, "orig": "0612345678", "dest": "0198765432",
                         "now": now}) for i in range(1, 2002)]
    lines[1499] = lines[1499][:60]  # cut inside the token, as a full disk would
    path = files / "calls.jsonl"
    path.write_text("\n".join(lines) + "\n")
    batches = []
    real = Verifier.verify_many
    monkeypatch.setattr(Verifier, "verify_many", lambda self, calls: batches.append(len(calls)) or real(self, calls))
    monkeypatch.setattr(Verifier, "verify", lambda *a, **k: pytest.fail("a call was verified alone"))

    assert main(_args(lab, files, path)) == 1
    out, err = capsys.readouterr()
    records = _records(out)
    assert len(records) == 2001
    assert [r["line"] for r in records] == list(range(1, 2002))
    assert records[1499] == {"line": 1500, "id": None,
                             "error": "not JSON: Unterminated string starting at: column 26"}
    results = records[:1499] + records[1500:]
    assert all(r["ok"] for r in results)
    assert [r["id"] for r in results] == [i for i in range(1, 2002) if i != 1500]
    assert sum(batches) == 2000 and len(batches) == 2  # the calls after the bad line went in a batch too
    assert "2000 calls, pass: 2000; 1 bad line (first: line 1500); " in err and err.endswith("calls/s\n")
    assert "Traceback" not in err


@pytest.mark.parametrize("line, error", [
    (b'{"orig": "0612345678", "dest": "0198765432"', "not JSON: Expecting ',' delimiter: column 44"),
    (b'\xff{"orig": 1}', "not UTF-8 (byte 1)"),
    (b'["0612345678", "0198765432"]', "not a JSON object but an array"),
    (b'"0612345678"', "not a JSON object but a string"),
    (b'{"id": 7, "dest": "0198765432"}', "missing key 'orig'"),
    (b'{"id": 7, "orig": "0612345678"}', "missing key 'dest'"),
    (b'{"id": 7, "orig": 612345678, "dest": "0198765432"}', "'orig' must be a string, not a number"),
    (b'{"id": 7, "orig": "0612345678", "dest": null}', "'dest' must be a string, not null"),
    (b'{"id": 7, "orig": "1", "dest": "2", "identity": {"a": 1}}', "'identity' must be a string or null, not an object"),
    (b'{"id": 7, "orig": "1", "dest": "2", "identity": ["x", 2]}', "'identity' must be a string or an array of strings"),
    (b'{"id": 7, "orig": "1", "dest": "2", "date": 5}', "'date' must be a string or null, not a number"),
    (b'{"id": 7, "orig": "1", "dest": "2", "now": "1700000000"}', "'now' must be epoch seconds (a finite number), not a string"),
    (b'{"id": 7, "orig": "1", "dest": "2", "now": true}', "'now' must be epoch seconds (a finite number), not a boolean"),
    (b'{"id": 7, "orig": "1", "dest": "2", "now": 1e400}', "'now' must be epoch seconds (a finite number), not a number"),
    (b'{"id": 7, "orig": "1", "dest": "2", "now": 1' + b"0" * 400 + b"}", "'now' must be epoch seconds (a finite number), not a number"),
    (b'{"orig": "1", "dest": "2", "now": NaN}', "not JSON: NaN is not JSON"),
])
def test_each_kind_of_bad_line_is_one_error_record(verifier, signer, now, line, error):
    good = json.dumps(_call(signer, 2, now)).encode()
    out, err = io.StringIO(), io.StringIO()
    assert batch.run(verifier, [good + b"\n", line + b"\n", good + b"\n"], out, err, progress=False) is False
    records = _records(out.getvalue())
    ident = 7 if line.startswith(b'{"id": 7') else None
    assert records[1] == {"line": 2, "id": ident, "error": error}
    assert [r.get("ok") for r in records] == [True, None, True]
    assert "2 calls, pass: 2; 1 bad line (first: line 2)" in err.getvalue()


def test_every_record_carries_the_input_id(verifier, signer, now):
    calls = [_call(signer, 0, now, id="a-7f3"), _call(signer, 0, now, id=12), _call(signer, 0, now, id=None),
             _call(signer, 0, now, id={"call-id": "x@y"}), _call(signer, 0, now), 
             dict(_call(signer, 0, now, id="late"), orig=5)]
    del calls[4]["id"]
    out = io.StringIO()
    lines = [json.dumps(c).encode() + b"\n" for c in calls]
    batch.run(verifier, lines, out, io.StringIO(), progress=False)
    records = _records(out.getvalue())
    assert [r.get("id", "absent") for r in records] == ["a-7f3", 12, None, {"call-id": "x@y"}, "absent", "late"]
    assert "error" in records[5] and records[5]["line"] == 6


def test_keys_beyond_the_call_are_ignored(verifier, signer, now):
    line = json.dumps(_call(signer, 1, now, source="10.0.0.7", ts="2026-12-05T09:00:00Z")).encode()
    out = io.StringIO()
    assert batch.run(verifier, [line], out, io.StringIO(), progress=False) is True
    assert _records(out.getvalue())[0]["ok"] is True


def test_records_stream_out_before_the_input_ends(verifier, signer, now):
    """A chunk's records are written (and flushed) before the next chunk is read."""
    line = json.dumps(_call(signer, 1, now)).encode() + b"\n"
    out = io.StringIO()

    def lines():
        for _ in range(batch.CHUNK):
            yield line
        assert out.getvalue().count("\n") == batch.CHUNK, "the first chunk was held back"
        yield line

    batch.run(verifier, lines(), out, io.StringIO(), progress=False)
    assert out.getvalue().count("\n") == batch.CHUNK + 1


def test_a_call_the_verifier_fails_on_costs_only_that_call(verifier, signer, now, monkeypatch):
    """Should verify_many raise (a defect), the chunk's calls go one by one and only the call that
    raises becomes an error record."""
    calls = [_call(signer, i, now) for i in range(3)]
    calls[1]["orig"] = "0611111111"
    real_verify = type(verifier).verify

    def verify(self, identity, orig=None, **kw):
        if orig == "0611111111":
            raise RuntimeError("boom")
        return real_verify(self, identity, orig, **kw)

    def verify_many(self, calls):
        raise RuntimeError("boom")

    monkeypatch.setattr(type(verifier), "verify", verify)
    monkeypatch.setattr(type(verifier), "verify_many", verify_many)
    out, err = io.StringIO(), io.StringIO()
    assert batch.run(verifier, [json.dumps(c).encode() for c in calls], out, err, progress=False) is False
    records = _records(out.getvalue())
    assert records[1] == {"line": 2, "id": "call-1",
                          "error": "the verifier failed on this call: RuntimeError: boom"}
    assert records[0]["ok"] and records[2]["ok"]
    assert "2 calls, pass: 2; 1 bad line (first: line 2)" in err.getvalue()


def test_exit_codes(lab, signer, files, now, capsys):
    ok = files / "ok.jsonl"
    ok.write_text(json.dumps(_call(signer, 1, now)) + "\n")
    assert main(_args(lab, files, ok)) == 0
    failed = files / "failed.jsonl"
    failed.write_text(json.dumps(_call(signer, 1, now, now=now + 3600)) + "\n")
    assert main(_args(lab, files, failed)) == 1
    bad_only = files / "bad.jsonl"
    bad_only.write_text(json.dumps(_call(signer, 1, now)) + "\n{\n")
    assert main(_args(lab, files, bad_only)) == 1
    empty = files / "empty.jsonl"
    empty.write_text("\n")
    assert main(_args(lab, files, empty)) == 0
    assert main(_args(lab, files, files / "missing.jsonl")) == 2  # usage: no such file
    assert "missing.jsonl" in capsys.readouterr().err
    (files / "junk.pem").write_text("not a certificate")
    args = _args(lab, files, ok)
    args[2] = str(files / "junk.pem")
    assert main(args) == 2  # configuration: no usable trust anchor


def _cli(*args):
    return [sys.executable, "-m", "manverify", *args]


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))


def test_closed_pipe_ends_quietly(lab, signer, files, now):
    """`... | head -1`: the run stops once the reader is gone, without a traceback."""
    path = files / "calls.jsonl"
    path.write_text("".join(json.dumps(_call(signer, i, now)) + "\n" for i in range(5000)))
    p = subprocess.Popen(_cli(*_args(lab, files, path)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=_env())
    first = p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=60) == EXIT_CLOSED_PIPE
    assert json.loads(first)["id"] == "call-0"
    assert err == b""


def test_closed_pipe_at_the_last_flush_ends_quietly(lab, signer, files, now):
    """Output small enough to sit in stdout's buffer until exit: the broken pipe shows in the final
    flush, which Python reports as "Exception ignored ... BrokenPipeError" unless handled."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # no reader at all, from the start
    try:
        header = signer.sign("0612345678", "0198765432", iat=now)
        p = subprocess.run(_cli("verify", "--trust", str(files / "root.pem"), "--cert",
                                f"{lab.x5u}={files / 'chain.pem'}", "--identity", header, "--orig",
                                "0612345678", "--dest", "0198765432", "--now", str(now)),
                           stdout=write_end, stderr=subprocess.PIPE, env=_env(), timeout=60)
    finally:
        os.close(write_end)
    assert (p.returncode, p.stderr) == (EXIT_CLOSED_PIPE, b"")


def _closed_stdout(argv):
    """argv run as a shell runs `cmd >&-`: file descriptor 1 closed from the start."""
    return subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", *argv], stderr=subprocess.PIPE, env=_env(), timeout=60)


def test_batch_started_with_stdout_closed_ends_as_a_closed_pipe(lab, signer, files, now):
    # Python sets sys.stdout to None then: the records have no reader from the start.
    path = files / "calls.jsonl"
    path.write_text("".join(json.dumps(_call(signer, i, now)) + "\n" for i in range(3)))
    p = _closed_stdout(_cli(*_args(lab, files, path)))
    assert (p.returncode, p.stderr) == (EXIT_CLOSED_PIPE, b"")


def test_one_call_with_stdout_closed_still_answers_by_its_exit_code(lab, signer, files, now):
    args = ["verify", "--trust", str(files / "root.pem"), "--cert", f"{lab.x5u}={files / 'chain.pem'}",
            "--orig", "0612345678", "--dest", "0198765432", "--now", str(now), "--identity"]
    good = _closed_stdout(_cli(*args, signer.sign("0612345678", "0198765432", iat=now)))
    bad = _closed_stdout(_cli(*args, "junk"))
    assert (good.returncode, good.stderr, bad.returncode, bad.stderr) == (0, b"", 1, b"")


def test_progress_on_a_terminal_only(lab, signer, files, now, capsys):
    path = files / "calls.jsonl"
    path.write_text("".join(json.dumps(_call(signer, i, now)) + "\n" for i in range(batch.CHUNK + 10)))
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(_cli(*_args(lab, files, path)), stdout=subprocess.DEVNULL, stderr=slave, env=_env())
        os.close(slave)
        seen = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if select.select([master], [], [], 1)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
        assert p.wait(timeout=60) == 0
    finally:
        os.close(master)
    text = seen.decode()
    assert "\r1024 calls verified, " in text  # the first chunk shows at once
    assert text.endswith(f"\r\x1b[K{batch.CHUNK + 10} calls, pass: {batch.CHUNK + 10}; "
                         + text.rsplit("; ", 1)[1])
    assert text.rstrip().endswith("calls/s")
    # not a terminal: no progress lines, the summary only
    assert main(_args(lab, files, path)) == 0
    err = capsys.readouterr().err
    assert "calls verified" not in err and err.count("\n") == 1


def test_stdin(lab, signer, files, now):
    p = subprocess.run(_cli(*_args(lab, files, "-")), input=(json.dumps(_call(signer, 1, now)) + "\n").encode(),
                       capture_output=True, env=_env(), timeout=60)
    assert p.returncode == 0 and json.loads(p.stdout)["id"] == "call-1"
