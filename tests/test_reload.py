"""Reload without restart: real files changed by atomic rename and by in-place write; a bad file
keeps the configuration in use and says why in the log."""
import logging
import os
import time
from pathlib import Path

import pytest

from manverify import Signer, Verifier, pki, ticker
from manverify.errors import ConfigError
from manverify.reload import Watch, config_files

from .conftest import DEST, NOW, ORIG

GOOD = dict(orig=ORIG, dest=DEST, now=NOW)


def _replace(path, data: bytes) -> None:
    """How a deployment tool writes: a temporary file renamed over the old one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _rewrite(path, data: bytes) -> None:
    """How an editor or `cp` writes: the same file truncated and written (size or mtime moves)."""
    before = path.stat().st_mtime_ns
    with open(path, "wb") as f:
        f.write(data)
    if path.stat().st_mtime_ns == before:  # a coarse clock: make the change visible as a real edit would
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def test_watch_applies_good_changes_and_keeps_the_old_configuration_on_a_bad_one(tmp_path, caplog):
    f = tmp_path / "limit.txt"
    f.write_text("1")
    builds, used = [], []

    def build():
        builds.append(1)
        return int(f.read_text())  # ValueError on junk

    w = Watch([f], build, used.append, "test limit", background=False)
    assert not w.check() and not builds  # nothing changed: nothing read
    _replace(f, b"2")
    assert w.check() and used == [2]
    _rewrite(f, b"3")
    assert w.check() and used == [2, 3]
    with caplog.at_level(logging.WARNING, logger="manverify.reload"):
        _rewrite(f, b"three")
        assert not w.check()
    assert used == [2, 3] and w.failures == 1 and "three" in w.error
    assert any("test limit changed but cannot be used" in r.getMessage() and "three" in r.getMessage()
               for r in caplog.records)
    assert not w.check() and len(builds) == 3  # the bad file is not read again until it changes
    f.unlink()
    assert not w.check() and used == [2, 3]  # a vanished file is a bad file too
    _replace(f, b"4")
    assert w.check() and used[-1] == 4 and w.error == ""


def test_config_files_names_only_paths():
    assert config_files(["/a.pem", b"PEM", "/b.pem"], None, {"https://x": b""}, "/c.pem") == [
        Path("/a.pem"), Path("/b.pem"), Path("/c.pem")]


@pytest.fixture
def two_labs():
    return pki.lab_pki(spc="1001", now=NOW), pki.lab_pki(spc="2002", now=NOW)


def test_verifier_trusts_a_new_root_once_the_anchor_file_changes(tmp_path, two_labs, caplog):
    old, new = two_labs
    anchors = tmp_path / "roots.pem"
    anchors.write_bytes(old.root.pem)
    v = Verifier(trust_anchors=[str(anchors)], certificates={new.x5u: new.chain_pem}, reload=True)
    call = Signer(new.signer.key_pem, new.x5u, clock=lambda: NOW).sign(ORIG, DEST, iat=NOW)
    assert v.verify(call, **GOOD).sip_code == 437  # signed under a root we do not trust yet
    first = v.store
    _replace(anchors, old.root.pem + new.root.pem)
    assert v._watch.check()
    assert v.store is not first and v.verify(call, **GOOD).ok
    # a half-written anchor file: the store in use stays, and the log says why
    with caplog.at_level(logging.WARNING, logger="manverify.reload"):
        _rewrite(anchors, new.root.pem[:200])
        assert not v._watch.check()
    assert v.verify(call, **GOOD).ok
    assert any("roots.pem" in r.getMessage() for r in caplog.records)
    # fixed in place: applied
    _rewrite(anchors, old.root.pem)
    assert v._watch.check() and v.verify(call, **GOOD).sip_code == 437


def test_the_background_thread_picks_the_change_up(tmp_path, two_labs):
    old, new = two_labs
    anchors = tmp_path / "roots.pem"
    anchors.write_bytes(old.root.pem)
    v = Verifier(trust_anchors=[str(anchors)], certificates={new.x5u: new.chain_pem}, reload=True)
    call = Signer(new.signer.key_pem, new.x5u, clock=lambda: NOW).sign(ORIG, DEST, iat=NOW)
    assert not v.verify(call, **GOOD).ok
    _replace(anchors, new.root.pem)
    deadline = time.monotonic() + 10 * ticker.INTERVAL
    while not v.verify(call, **GOOD).ok:
        assert time.monotonic() < deadline, "the new anchors were not picked up"
        time.sleep(0.05)


def test_crl_signers_and_the_local_copy_directory_are_watched(tmp_path, two_labs):
    lab, _ = two_labs
    (tmp_path / "certs").mkdir()
    (tmp_path / "pa.pem").write_bytes(lab.root.pem)
    v = Verifier(trust_anchors=[lab.root.pem], certificates=str(tmp_path / "certs"),
                 crl_signers=[str(tmp_path / "pa.pem")], reload=True)
    assert set(v._watch.paths) == {tmp_path / "certs", tmp_path / "certs" / "x5u.json", tmp_path / "pa.pem"}


def test_reload_needs_the_options_not_a_ready_store(verifier):
    with pytest.raises(ConfigError, match="reload"):
        Verifier(store=verifier.store, reload=True)
