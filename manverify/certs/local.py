"""The local copy of operator certificates that MAN mandates ("without external requests").

Either a mapping {x5u_url: pem_chain} or a directory synchronised from the MAN platform's export.
In a directory an x5u is found
  1. through the manifest `x5u.json` ({"https://…/op.pem": "op.pem", …}) when the directory has
     one — and then only through it: an x5u the manifest does not list is not in the local copy,
     whatever its last path segment (https://attacker.invalid/x/op.pem must not load op.pem);
  2. otherwise by the URL's last path segment (https://certs.example.fr/op1001.pem → op1001.pem).
The manifest is read again as soon as it is replaced (like CRL files), so the daily sync adding
an operator needs no restart. A manifest caught half-written keeps the previous one in use.

Nothing here runs per call: the local copy is consulted when a chain is (re)loaded into the cache.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

from ..errors import ConfigError
from ._warn import RateLimited
from .model import MAX_CHAIN_BYTES

MANIFEST = "x5u.json"
CERT_SUFFIXES = (".pem", ".crt", ".cer", ".der")

log = logging.getLogger(__name__)


class TooLarge(Exception):
    """A local file is larger than any certificate chain may be."""


class LocalCopy:
    def __init__(self, certificates: Union[None, str, os.PathLike, Mapping[str, bytes]]):
        self._mapping: Dict[str, bytes] = {}
        self.directory: Optional[Path] = None
        self._manifest: Optional[Dict[str, str]] = None  # None: the directory has no manifest
        self._stamp: Optional[Tuple[int, int, int]] = None  # (inode, mtime_ns, size) of the one read
        self._lock = threading.Lock()
        self._warn = RateLimited(log)
        if certificates is None:
            return
        if isinstance(certificates, Mapping):
            self._mapping = dict(certificates)
            return
        path = Path(certificates)
        if not path.is_dir():
            raise ConfigError(f"certificates directory {path} does not exist")
        self.directory = path
        problem = self._reread_manifest()
        if problem:
            raise ConfigError(problem)

    def urls(self) -> List[str]:
        """Every x5u the local copy names: the mapping's keys and the manifest's."""
        with self._lock:
            self._refresh_manifest()
            named = list(self._mapping) + [u for u in (self._manifest or ()) if u not in self._mapping]
        return named

    def unnamed_files(self) -> List[Path]:
        """The certificate files of a directory without a manifest (no URL names them)."""
        with self._lock:
            self._refresh_manifest()
            if self.directory is None or self._manifest is not None:
                return []
        try:
            return sorted(p for p in self.directory.iterdir() if p.suffix.lower() in CERT_SUFFIXES
                          and not p.name.startswith(".") and p.is_file())
        except OSError as e:
            log.warning("cannot list the certificates directory %s: %s", self.directory, e.strerror or e)
            return []

    def get(self, x5u: str) -> Optional[bytes]:
        """The chain the local copy holds for x5u, None when it holds none; TooLarge for a file
        larger than MAX_CHAIN_BYTES."""
        data = self._mapping.get(x5u)
        if data is not None or self.directory is None:
            return data
        with self._lock:
            self._refresh_manifest()
            manifest = self._manifest
        name = manifest.get(x5u) if manifest is not None else Path(urlsplit(x5u).path).name
        if not name or "/" in name or "\\" in name or name in (".", "..", MANIFEST):
            return None
        try:
            return self.read_file(self.directory / name)
        except OSError:
            return None

    @staticmethod
    def read_file(path: Path) -> bytes:
        """A local certificate file; OSError, or TooLarge past MAX_CHAIN_BYTES."""
        with open(path, "rb") as f:
            data = f.read(MAX_CHAIN_BYTES + 1)
        if len(data) > MAX_CHAIN_BYTES:
            raise TooLarge(f"local copy {path} is larger than {MAX_CHAIN_BYTES} bytes")
        return data

    # ------------------------------------------------------------------ the manifest
    def _refresh_manifest(self) -> None:
        if self.directory is None:
            return
        problem = self._reread_manifest()
        if problem:
            self._warn.warning(str(self.directory), "%s; the previous manifest stays in use", problem)

    def _reread_manifest(self) -> str:
        """Read x5u.json again if it was replaced; "" or why the new one cannot be used."""
        path = self.directory / MANIFEST
        try:
            st = path.stat()
        except FileNotFoundError:
            self._manifest, self._stamp = None, None
            return ""
        except OSError as e:
            return f"cannot read {path}: {e.strerror or e}"
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return ""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            return f"cannot read {path}: {e}"
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            return f"{path} must map x5u URLs to file names"
        self._manifest, self._stamp = data, stamp
        return ""
