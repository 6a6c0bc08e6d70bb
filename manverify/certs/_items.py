"""Reading a configuration option that lists certificates or CRLs as paths, bytes or objects."""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..errors import ConfigError

# What each configuration file held when it was last read whole in this process: {identity: name}
# per path (a few configured files, so the memory is small). See note_dropped().
_held: Dict[str, Dict[str, str]] = {}
_held_lock = threading.Lock()


def _identity(item: Any) -> Optional[Tuple[str, str]]:
    """(what identifies an item across reads, how to name it): a certificate by its bytes (a
    renewed root is another root), a CRL by its issuer (the daily CRL replaces the last one)."""
    if isinstance(item, x509.Certificate):
        fingerprint = hashlib.sha256(item.public_bytes(Encoding.DER)).hexdigest()
        return fingerprint, f"{item.subject.rfc4514_string()} (SHA-256 {fingerprint[:16]}…)"
    if isinstance(item, x509.CertificateRevocationList):
        name = item.issuer.rfc4514_string()
        return name, f"the CRL of {name}"
    return None


def note_dropped(path: os.PathLike, items: Iterable[Any], what: str, logger: logging.Logger) -> None:
    """Warn when a file now read whole lacks items it held at its last read in this process.

    A file cut exactly between two of its blocks is itself a whole, readable file, the same bytes
    as one written with fewer blocks: it cannot be refused, so losing a root (or a CRL signer, a
    CRL) is said in the log, never silent. A change the operator meant is said once."""
    now = dict(filter(None, map(_identity, items)))
    key = str(Path(path).resolve())
    with _held_lock:
        before, _held[key] = _held.get(key, {}), now
    gone = [name for identity, name in before.items() if identity not in now]
    if gone:
        logger.warning("%s file %s no longer holds %s, which it held when last read: if that was not meant, "
                       "the file was cut short or replaced by mistake", what, path, "; ".join(gone))


def load_items(items: Any, ready: type, parse: Callable[[bytes], list], what: str,
               logger: Optional[logging.Logger] = None) -> List[Any]:
    """Objects of type `ready` from paths, PEM/DER bytes or ready objects; ConfigError naming the
    culprit when one cannot be read (`what` names the option's items). With a logger, what a file
    no longer holds is logged (note_dropped)."""
    if isinstance(items, (str, bytes, os.PathLike, ready)):
        items = [items]
    if not isinstance(items, Iterable):
        raise ConfigError(f"{what} must be given as a list of paths, PEM/DER bytes or objects")
    out: List[Any] = []
    for item in items:
        if isinstance(item, ready):
            out.append(item)
            continue
        if isinstance(item, (str, os.PathLike)):
            try:
                data, where = Path(item).read_bytes(), str(item)
            except OSError as e:
                raise ConfigError(f"cannot read {what} {item}: {e.strerror}") from None
        elif isinstance(item, bytes):
            data, where = item, "given as bytes"
        else:
            raise ConfigError(f"a {what} must be a path or PEM/DER bytes, not {type(item).__name__}")
        try:
            parsed = parse(data)
        except ValueError as e:
            raise ConfigError(f"cannot read {what} {where}: {e}") from None
        if logger is not None and isinstance(item, (str, os.PathLike)):
            note_dropped(item, parsed, what, logger)
        out.extend(parsed)
    return out
