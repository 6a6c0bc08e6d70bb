"""The native PASSporT scanner (native/passport_impl.h, `mv_shaken_scan` in mv.h, called through
es256.shaken_scan, the engine's one gateway).

It cuts compact tokens and recognises the claims shape every SHAKEN signer writes, in C and
without the GIL, so the verifier's usual call spends no Python time on base64url and JSON. It is
a strict subset of passport.py's decoder: a token it does not recognise comes back as None and
passport.py decodes it (and says what is wrong with it). What the claims mean is judged by
passport.claims_from_scan, in Python.

Active with the native signature backend (MANVERIFY_BACKEND=cryptography turns it off too, so the
pure-Python decoder is what that configuration tests).
"""
from __future__ import annotations

import struct
from itertools import accumulate
from typing import List, Optional, Sequence, Tuple

from . import es256

# (fields, iat, signing input, r||s); fields = [attest, orig, origid, dest, ...] as strings
Scanned = Tuple[List[str], int, bytes, bytes]
_IAT_END = struct.Struct("<qQ")  # the record's tail after r||s
_RECORD = es256.SCAN_RECORD

AVAILABLE = es256.backend() == "native"  # fixed at import (the backend is chosen once)


def scan_one(token: bytes) -> Optional[Scanned]:
    """scan() of one token, without the batch's bookkeeping (the per-call path)."""
    if not AVAILABLE:
        return None
    raw = es256.shaken_scan_one(token)
    line = raw[_RECORD:-1]
    if not line:
        return None
    iat, end = _IAT_END.unpack_from(raw, 64)
    return line.decode("ascii").split('"'), iat, token[:end], raw[:64]


def scan(tokens: Sequence[bytes]) -> List[Optional[Scanned]]:
    """Each ASCII token scanned: its fields, iat, signing input and signature, or None when it
    is not the common SHAKEN shape (or the scanner is not built)."""
    n = len(tokens)
    if not AVAILABLE or n == 0:
        return [None] * n
    blob = b"".join(tokens)
    raw = es256.shaken_scan(blob, list(accumulate(map(len, tokens))))
    lines = raw[_RECORD * n:].decode("ascii").split("\n")
    out: List[Optional[Scanned]] = []
    start = 0
    for i, token in enumerate(tokens):
        if lines[i]:
            at = _RECORD * i
            iat, end = _IAT_END.unpack_from(raw, at + 64)
            out.append((lines[i].split('"'), iat, blob[start:start + end], raw[at:at + 64]))
        else:
            out.append(None)
        start += len(token)
    return out
