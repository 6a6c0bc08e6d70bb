import json
import subprocess
import sys
import time

import pytest

from manverify.cli import main

from .conftest import NOW


@pytest.fixture
def pem_files(lab, tmp_path):
    (tmp_path / "root.pem").write_bytes(lab.root.pem)
    (tmp_path / "chain.pem").write_bytes(lab.chain_pem)
    (tmp_path / "key.pem").write_bytes(lab.signer.key_pem)
    return tmp_path


def _verify_args(lab, d):
    return ["verify", "--trust", str(d / "root.pem"), "--cert", f"{lab.x5u}={d / 'chain.pem'}"]


def test_sign_then_verify(lab, pem_files, capsys):
    now = int(time.time())
    assert main(["sign", "--key", str(pem_files / "key.pem"), "--x5u", lab.x5u, "--orig", "0612345678",
                 "--dest", "0198765432", "--attest", "B", "--iat", str(now)]) == 0
    header = capsys.readouterr().out.strip()
    assert header.endswith(f";info=<{lab.x5u}>;alg=ES256;ppt=shaken")
    args = _verify_args(lab, pem_files) + ["--identity", header, "--orig", "+33612345678",
                                           "--dest", "+33198765432", "--now", str(now)]
    assert main(args) == 0
    assert capsys.readouterr().out.startswith("pass  attest=B spc=1001")
    assert main(args + ["--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verstat"] == "TN-Validation-Passed"
    assert main(args[:-2] + ["--now", str(now + 3600)]) == 1
    assert capsys.readouterr().out.startswith("FAIL  403 Stale Date")


def test_sign_bare_token(lab, pem_files, capsys):
    assert main(["sign", "--key", str(pem_files / "key.pem"), "--x5u", lab.x5u, "--orig", "0612345678",
                 "--dest", "0198765432", "--token"]) == 0
    assert capsys.readouterr().out.strip().count(".") == 2


def test_batch(lab, signer, pem_files, capsys):
    now = NOW  # the signer fixture's clock: a token dated by the wall clock is refused after 60 s of run
    calls = [{"identity": signer.sign("0612345678", "0198765432", iat=now), "orig": "0612345678",
              "dest": "0198765432", "now": now} for _ in range(5)]
    calls.append({"identity": None, "orig": "0612345678", "dest": "0198765432", "now": now})
    path = pem_files / "calls.jsonl"
    path.write_text("\n".join(json.dumps(c) for c in calls) + "\n\n")
    assert main(_verify_args(lab, pem_files) + ["--batch", str(path)]) == 1
    out, err = capsys.readouterr()
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["sip_code"] for x in lines] == [None] * 5 + [428]
    assert [x["line"] for x in lines] == [1, 2, 3, 4, 5, 6] and "id" not in lines[0]
    assert "6 calls, pass: 5, 428: 1" in err and "calls/s" in err


def test_usage_errors_exit_2(lab, pem_files, capsys, tmp_path):
    assert main(["verify", "--trust", str(tmp_path / "missing.pem"), "--identity", "x", "--orig", "1",
                 "--dest", "2"]) == 2
    assert main(_verify_args(lab, pem_files) + ["--identity", "x"]) == 2  # no --orig/--dest
    assert main(_verify_args(lab, pem_files) + ["--batch", str(tmp_path / "missing.jsonl")]) == 2
    assert main(["sign", "--key", str(pem_files / "root.pem"), "--x5u", lab.x5u, "--orig", "x",
                 "--dest", "0198765432"]) == 2
    assert main([]) == 2
    with pytest.raises(SystemExit) as e:
        main(["verify"])  # argparse: --trust is required
    assert e.value.code == 2
    assert "manverify:" in capsys.readouterr().err


def test_demo_runs_and_every_call_gets_its_verdict(capsys):
    assert main(["demo", "--calls", "400"]) == 0
    out = capsys.readouterr().out
    assert "every call got the expected verdict" in out
    for fragment in ("428 Use Identity Header", "436 Bad Identity Info", "437 Unsupported Credential",
                     "signer certificate expired",
                     "438 Invalid Identity Header", "403 Stale Date", "400 Bad Request", "calls/s"):
        assert fragment in out


def test_module_entry_point():
    p = subprocess.run([sys.executable, "-m", "manverify", "--help"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0 and "demo" in p.stdout


def test_bench_passes_its_own_options(monkeypatch, capsys):
    """`manverify bench --json --rounds N` reaches bench.main (argparse alone refused --json)."""
    from manverify import bench

    seen = []
    monkeypatch.setattr(bench, "main", lambda argv: seen.append(argv) or 0)
    assert main(["bench", "--json", "--rounds", "3"]) == 0
    assert main(["bench"]) == 0
    assert seen == [["--json", "--rounds", "3"], []]
    with pytest.raises(SystemExit):
        main(["demo", "--rounds", "3"])  # other commands still refuse unknown options

