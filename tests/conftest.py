"""Shared fixtures: one lab PKI per session, a signer, a local-mode verifier, a fixed clock."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from manverify import pki
from manverify.signer import Signer
from manverify.verifier import Verifier

# Third-party test vectors, vendored unchanged (tests/vectors/README.md says where from).
VECTORS = Path(__file__).resolve().parent / "vectors"

NOW = int(time.time())
ORIG = "+33612345678"
DEST = "01 98 76 54 32"


def wycheproof(name: str) -> dict:
    """One Project Wycheproof file from tests/vectors/wycheproof/, parsed."""
    return json.loads((VECTORS / "wycheproof" / name).read_text())


@pytest.fixture(scope="session")
def lab():
    return pki.lab_pki(spc="1001", now=NOW)


@pytest.fixture(scope="session")
def signer(lab):
    """The lab operator's Signer, its clock at NOW (the tests' fixed clock), however long the run."""
    return Signer(lab.signer.key_pem, lab.x5u, clock=lambda: NOW)


@pytest.fixture(scope="session")
def signer_at(lab):
    """signer_at(t): the lab operator's Signer with its clock at t, for tokens of another time
    (Signer refuses an iat outside its freshness window)."""
    return lambda when, **options: Signer(lab.signer.key_pem, lab.x5u, clock=lambda: when, **options)


@pytest.fixture(scope="session")
def verifier(lab):
    """MAN local mode: trust anchor plus the local copy of the signer chain; no network."""
    return Verifier(trust_anchors=[lab.root.pem], certificates={lab.x5u: lab.chain_pem})


@pytest.fixture
def now():
    return NOW
