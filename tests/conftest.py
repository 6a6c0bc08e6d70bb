"""Shared fixtures: one lab PKI per session, a signer, a local-mode verifier, a fixed clock."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from manverify import pki
from manverify.signer import Signer
from manverify.verifier import Verifier

# ../shared/vectors beside the checkout (CI clones main with shared/ next to it); the sanitizer
# script runs a scratch copy of the tree and points here with MANVERIFY_VECTORS.
VECTORS = Path(os.environ.get("MANVERIFY_VECTORS") or Path(__file__).resolve().parents[2] / "shared" / "vectors")

NOW = int(time.time())
ORIG = "+33612345678"
DEST = "01 98 76 54 32"


def vectors_dir() -> Path:
    if not VECTORS.is_dir():
        pytest.skip(f"external test vectors not found at {VECTORS} (shared/ must sit beside the checkout)")
    return VECTORS


@pytest.fixture(scope="session")
def lab():
    return pki.lab_pki(spc="1001", now=NOW)


@pytest.fixture(scope="session")
def signer(lab):
    return Signer(lab.signer.key_pem, lab.x5u)


@pytest.fixture(scope="session")
def verifier(lab):
    """MAN local mode: trust anchor plus the local copy of the signer chain; no network."""
    return Verifier(trust_anchors=[lab.root.pem], certificates={lab.x5u: lab.chain_pem})


@pytest.fixture
def now():
    return NOW
