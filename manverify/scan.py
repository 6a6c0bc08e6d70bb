"""The native PASSporT scanner (native/passport_impl.h, `mv_shaken_scan` in mv.h).

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
import threading
from itertools import accumulate
from typing import List, Optional, Sequence, Tuple

from . import es256

if es256.backend() == "native":
    from ._native import ffi as _ffi, lib as _lib

    _RECORD = _lib.MV_SCAN_RECORD
else:
    _ffi = _lib = None

# (fields, iat, signing input, r||s); fields = [attest, orig, origid, dest, ...] as strings
Scanned = Tuple[List[str], int, bytes, bytes]
_IAT_END = struct.Struct("<qQ")  # the record's tail after r||s


AVAILABLE = _lib is not None  # fixed at import (the backend is chosen once)


class _Buffers:
    """One thread's arguments to mv_shaken_scan, reused (allocating them costs more than a scan)."""

    __slots__ = ("n", "out_len", "offsets", "out", "used")

    def __init__(self, n: int, out_len: int):
        self.n, self.out_len = n, out_len
        self.offsets = _ffi.new("size_t[]", n + 1)
        self.out = _ffi.new("unsigned char[]", out_len)
        self.used = _ffi.new("size_t *")


_local = threading.local()
_KEEP_BYTES = 1 << 20  # a thread keeps buffers up to this size (verify_many's chunks fit); larger are one-off


def _buffers(n: int, out_len: int) -> _Buffers:
    if out_len > _KEEP_BYTES:
        return _Buffers(n, out_len)
    b = getattr(_local, "buffers", None)
    if b is None or b.n < n or b.out_len < out_len:
        b = _Buffers(max(n, b.n if b else 1), max(out_len, b.out_len if b else 10240))
        _local.buffers = b
    return b


def scan_one(token: bytes) -> Optional[Scanned]:
    """scan() of one token, without the batch's bookkeeping (the per-call path)."""
    if _lib is None:
        return None
    b = _buffers(1, _RECORD + len(token) + 1)
    b.offsets[1] = len(token)
    if _lib.mv_shaken_scan(token, len(token), b.offsets, 1, b.out, b.out_len, b.used) != 0:
        raise RuntimeError("mv_shaken_scan refused its arguments")  # a bug here, never call data
    raw = _ffi.buffer(b.out, b.used[0])[:]
    line = raw[_RECORD:-1]
    if not line:
        return None
    iat, end = _IAT_END.unpack_from(raw, 64)
    return line.decode("ascii").split('"'), iat, token[:end], raw[:64]


def scan(tokens: Sequence[bytes]) -> List[Optional[Scanned]]:
    """Each ASCII token scanned: its fields, iat, signing input and signature, or None when it
    is not the common SHAKEN shape (or the scanner is not built)."""
    n = len(tokens)
    if _lib is None or n == 0:
        return [None] * n
    blob = b"".join(tokens)
    b = _buffers(n, (_RECORD + 1) * n + len(blob))
    b.offsets[0:n + 1] = [0, *accumulate(map(len, tokens))]
    rc = _lib.mv_shaken_scan(blob, len(blob), b.offsets, n, b.out, b.out_len, b.used)
    if rc != 0:  # the arguments above are built to hold: a failure is a bug here, never call data
        raise RuntimeError(f"mv_shaken_scan failed with code {rc}")
    raw = _ffi.buffer(b.out, b.used[0])[:]
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
