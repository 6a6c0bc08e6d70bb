"""`manverify serve --lab-config DIR`: a throwaway STI PKI and a configuration that serves it.

Writes root.pem (the trust anchor), certs/ (the local copy: the signer's chain under its x5u, named
by the directory's x5u.json manifest), signer.key, and serve.json with a fresh random API key;
then `manverify serve --config DIR/serve.json` starts a verification and signing service whose
signatures verify against its own trust anchor. A lab, never production: the key is on disk.
"""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from .. import pki
from ..certs.local import MANIFEST

LAB_X5U = "https://certs.lab.invalid/op1001.pem"


def write(directory: "str | os.PathLike", listen: str = "127.0.0.1:8080", workers: int = 2) -> Path:
    """Create the lab files in `directory`; returns the configuration file's path."""
    d = Path(directory).resolve()
    (d / "certs").mkdir(parents=True, exist_ok=True)
    lab = pki.lab_pki(spc="1001", x5u=LAB_X5U)
    (d / "root.pem").write_bytes(lab.root.pem)
    (d / "certs" / "op1001.pem").write_bytes(lab.chain_pem)
    (d / "certs" / MANIFEST).write_text(json.dumps({LAB_X5U: "op1001.pem"}, indent=2) + "\n")
    key = d / "signer.key"
    key.touch(mode=0o600)
    key.write_bytes(lab.signer.key_pem)
    config = {
        "trust_anchors": [str(d / "root.pem")],
        "certificates": str(d / "certs"),
        "cache_dir": str(d / "cache"),
        "verifier_options": {"fetch": False},  # the local copy only: MAN's "without external requests"
        "policy": {"role": "terminating"},
        "signer": {"key": str(key), "x5u": LAB_X5U},
        "server": {"listen": listen, "workers": workers, "api_keys": [secrets.token_hex(24)]},
    }
    path = d / "serve.json"
    path.touch(mode=0o600)
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path
