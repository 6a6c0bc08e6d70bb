"""The README and docs/ stay true: their links lead somewhere, every page is reachable from the
README, every code block marked as run by tests is run by one, and the service's lab set-up runs
as docs/serving.md shows it."""
from __future__ import annotations

import http.client
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from manverify import Verifier

from .docpages import MARK, ROOT, anchors, block, marked, pages, prose_lines, relative
from .servehelp import free_port, terminate

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def links(page: Path):
    for line in prose_lines(page):
        for target in LINK.findall(line):
            if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: leave the tree
                yield target


def test_the_readme_and_docs_pages_exist():
    # the checks below go over whatever pages there are: make sure there are some
    assert (ROOT / "README.md").exists() and len(pages()) >= 5


def test_every_relative_link_leads_to_a_file_and_a_heading():
    broken = []
    for page in pages():
        for target in links(page):
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{relative(page)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{relative(page)}: {target} (no heading with that anchor in {relative(dest)})")
    assert not broken, "\n".join(broken)


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links(ROOT / "README.md")}
    missing = [relative(p) for p in pages()[1:] if p.resolve() not in linked]
    assert not missing, f"README.md's table of contents lacks {missing}"


def test_anchors_are_the_ones_github_makes():
    page = ROOT / "docs" / "serving.md"
    assert anchors(page)[0] == "serving-sbcs-manverify-serve-sti-vs--sti-as-over-http"


def test_every_block_marked_as_run_by_tests_is_taken_by_a_test():
    found = [m for page in pages() for m in marked(page)]
    assert found, "no page marks a code block as run by tests"
    names = [m.name for m in found]
    assert len(names) == len(set(names)), f"a name marks two blocks: {names}"
    # a marker that does not sit right above a fence would be silently ignored
    for page in pages():
        text = page.read_text()
        assert text.count("<!-- run by tests:") == len(MARK.findall(text)), f"{relative(page)}: a marker not above a fence"
    tests = [p.read_text() for p in (ROOT / "tests").rglob("*.py") if p.name != "docpages.py"]
    untaken = [f"{m.page}: {m.name}" for m in found
               if not any(f'block("{m.page}", "{m.name}")' in source for source in tests)]
    assert not untaken, f"marked as run by tests, but no test takes them: {untaken}"


def test_block_names_the_missing_marker():
    with pytest.raises(LookupError, match="no code block marked <!-- run by tests: nothing -->"):
        block("docs/certificates.md", "nothing")


def _commands(text: str):
    """The block's command lines as argument lists, comments dropped."""
    return [shlex.split(line, comments=True) for line in text.splitlines() if line.strip()]


def _wait_ready(proc: subprocess.Popen, port: int, log: Path, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, log.read_text()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.1)
    raise AssertionError(f"manverify serve not ready after {timeout} s: {log.read_text()}")


def test_the_serve_lab_set_up_works_as_written(tmp_path):
    """docs/serving.md's two commands and its curl call, run with the lab in a scratch directory
    and the service on a free port of 127.0.0.1."""
    pytest.importorskip("uvicorn", reason="uvicorn (extra manverify[serve], Python >= 3.10) is not installed")
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed (.ci/run installs it)")
    lab_dir = tmp_path / "stilab"
    make, serve = _commands(block("docs/serving.md", "serve-lab").replace("/tmp/stilab", str(lab_dir)))
    assert make[:3] == ["manverify", "serve", "--lab-config"] and serve[:3] == ["manverify", "serve", "--config"]
    subprocess.run([sys.executable, "-m", *make], check=True, timeout=60, capture_output=True)
    config_path = lab_dir / "serve.json"
    config = json.loads(config_path.read_text())
    assert config["server"]["listen"] == "127.0.0.1:8080" and config["server"]["workers"] == 2  # as the page says
    port = free_port()
    config["server"]["listen"] = f"127.0.0.1:{port}"
    config_path.write_text(json.dumps(config))
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", *serve], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(proc, port, tmp_path / "serve.log")
        call = (block("docs/serving.md", "serve-sign").replace("/tmp/stilab", str(lab_dir))
                .replace("127.0.0.1:8080", f"127.0.0.1:{port}"))
        # the page's `python` is the interpreter running these tests
        script = f"set -e\npython() {{ {shlex.quote(sys.executable)} \"$@\"; }}\n{call}"
        run = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=30)
        assert run.returncode == 0, run.stderr
    finally:
        terminate(proc)
        log.close()
    identity = json.loads(run.stdout)["signingResponse"]["identity"]
    verifier = Verifier(trust_anchors=[str(lab_dir / "root.pem")], certificates=str(lab_dir / "certs"), fetch=False)
    result = verifier.verify(identity, orig="+33612345678", dest="0198765432")
    assert result.ok and result.attest == "A", result.detail
