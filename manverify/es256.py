"""The signature boundary: ES256 (ECDSA P-256 / SHA-256, raw r||s) verification.

This is the only module that touches a signature backend and, with scan.py (the engine's PASSporT
scanner), the only importer of the compiled `manverify._native`. Two backends sit behind one
interface:
  native        the C engine in native/: per-key precomputed tables, GIL released during calls
  cryptography  OpenSSL through `cryptography`, used when the extension is not built

MANVERIFY_BACKEND=native|cryptography forces one (forcing native when it is missing is an error).
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from itertools import accumulate
from typing import Optional, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import ConfigError, InvalidKey

try:  # the C engine is optional: a source checkout without a compiler still works
    from ._native import ffi as _ffi, lib as _lib
except ImportError:  # pragma: no cover - exercised by the no-native CI job
    _ffi = _lib = None

_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_G = bytes.fromhex(
    "04"
    "6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296"
    "4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5"
)
# C return codes (native/mv.h)
_VALID, _EPOINT = 1, -2


def _choose() -> str:
    forced = os.environ.get("MANVERIFY_BACKEND", "")
    if forced not in ("", "native", "cryptography"):
        raise ConfigError(f"MANVERIFY_BACKEND must be 'native' or 'cryptography', not {forced!r}")
    if forced == "native" and _lib is None:
        raise ConfigError("MANVERIFY_BACKEND=native but the extension manverify._native is not built")
    if forced:
        return forced
    return "native" if _lib is not None else "cryptography"


_BACKEND = _choose()


def _native_table(point: bytes):
    """A per-key table in Python-owned memory: freed with the key, safe to share after fork."""
    table = _ffi.new("unsigned char[]", _lib.mv_table_size())
    scratch = _ffi.new("unsigned char[]", _lib.mv_scratch_size())
    rc = _lib.mv_key_load(table, len(table), scratch, len(scratch), point, len(point))
    if rc == _EPOINT:
        raise InvalidKey("not a point of P-256")
    if rc != 0:
        raise InvalidKey(f"native key load failed (code {rc})")
    return table


_GTABLE = _native_table(_G) if _lib is not None else None


class PublicKey:
    """A loaded, validated P-256 public key, ready for many verifications.

    Carries the native engine's precomputed table (about 148 KiB) when the engine is built.
    Immutable; safe to share between threads and across fork.
    """

    __slots__ = ("point", "_crypto", "_table")

    def __init__(self, point: bytes, crypto_key: ec.EllipticCurvePublicKey, table=None):
        self.point = point  # 65-byte uncompressed SEC1 encoding
        self._crypto = crypto_key
        self._table = table

    def __repr__(self) -> str:
        return f"<es256.PublicKey {self.point[1:9].hex()}…>"


def load_key(point: bytes) -> PublicKey:
    """Load an uncompressed SEC1 P-256 point (0x04 || X || Y); raise InvalidKey if it is not one."""
    if not isinstance(point, (bytes, bytearray)) or len(point) != 65 or point[0] != 4:
        raise InvalidKey("expected a 65-byte uncompressed P-256 point")
    point = bytes(point)
    try:
        crypto_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError as e:
        raise InvalidKey(f"not a valid P-256 point: {e}") from None
    table = _native_table(point) if _lib is not None else None
    return PublicKey(point, crypto_key, table)


def key_from_public(public_key) -> PublicKey:
    """Wrap a `cryptography` EC public key (e.g. from a certificate)."""
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise InvalidKey("ES256 needs a P-256 key")
    return load_key(public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))


def _verify_crypto(key: PublicKey, message: bytes, sig64: bytes) -> bool:
    if len(sig64) != 64:
        return False
    r = int.from_bytes(sig64[:32], "big")
    s = int.from_bytes(sig64[32:], "big")
    # A DER signature cannot carry r or s outside [1, n-1] the way ECDSA requires: refuse here.
    if not (0 < r < _N and 0 < s < _N):
        return False
    try:
        key._crypto.verify(encode_dss_signature(r, s), message, _ECDSA_SHA256)
        return True
    except InvalidSignature:
        return False


def _verify_native(key: PublicKey, message: bytes, sig64: bytes) -> bool:
    return _lib.mv_verify(_GTABLE, key._table, message, len(message), sig64, len(sig64)) == _VALID


_ZERO_SIG = bytes(64)  # r = 0: what a signature of the wrong length verifies as (invalid)


def _verify_many_native(keys, messages, sigs, threads: int = 1) -> list:
    """One packed C batch (messages joined, offsets, signatures joined): a few Python objects per
    batch instead of per item, so the GIL-held part stays small and threads scale."""
    n = len(keys)
    if n == 0:
        return []
    blob = b"".join(messages)
    offsets = _ffi.new("size_t[]", [0, *accumulate(map(len, messages))])
    if not all(len(s) == 64 for s in sigs):
        sigs = [s if len(s) == 64 else _ZERO_SIG for s in sigs]
    sig_blob = b"".join(sigs)
    tables = _ffi.new("unsigned char *[]", [k._table for k in keys])
    out = _ffi.new("int[]", n)
    msgs_c, sigs_c = _ffi.from_buffer(blob), _ffi.from_buffer(sig_blob)
    gtable = _GTABLE

    def run(lo: int, hi: int) -> None:  # the C call releases the GIL
        rc = _lib.mv_verify_batch_packed(gtable, tables + lo, msgs_c, len(blob), offsets + lo,
                                         sigs_c + 64 * lo, 64 * (hi - lo), out + lo, hi - lo)
        if rc != 0:  # malformed arguments: a bug here, never call data
            raise RuntimeError(f"mv_verify_batch_packed failed with code {rc}")

    threads = max(1, min(threads, n // _MIN_PER_THREAD or 1))
    if threads == 1:
        run(0, n)
    else:
        step = -(-n // threads)
        futures = [_executor(threads).submit(run, lo, min(n, lo + step)) for lo in range(step, n, step)]
        run(0, step)  # this thread takes the first share
        for f in futures:
            f.result()
    return [v == _VALID for v in _ffi.unpack(out, n)]


_MIN_PER_THREAD = 16  # below this a thread hand-off costs more than the verifications
_pool = None
_pool_pid = 0
_pool_lock = threading.Lock()


def _executor(threads: int) -> ThreadPoolExecutor:
    """A module pool for verify_many(threads=N); rebuilt after fork (a forked pool has no threads)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid() or _pool._max_workers < threads - 1:
            _pool = ThreadPoolExecutor(max(1, threads - 1), thread_name_prefix="manverify-es256")
            _pool_pid = os.getpid()
        return _pool


def verify(key: PublicKey, message: bytes, sig64: bytes) -> bool:
    """True iff sig64 (raw 64-byte r||s) is a valid ES256 signature of message under key."""
    if _BACKEND == "native":
        return _verify_native(key, message, sig64)
    return _verify_crypto(key, message, sig64)


def verify_many(keys: Sequence[PublicKey], messages: Sequence[bytes], sigs: Sequence[bytes],
                threads: int = 1) -> list:
    """Verify a batch; results in input order. The native path is one packed C call per thread
    (GIL released) with one modular inversion per 64 signatures; threads > 1 splits the batch
    over that many threads (this one included)."""
    if not (len(keys) == len(messages) == len(sigs)):
        raise ValueError("keys, messages and sigs must have the same length")
    if _BACKEND == "native":
        return _verify_many_native(keys, messages, sigs, threads)
    return [_verify_crypto(k, m, s) for k, m, s in zip(keys, messages, sigs)]


def verify_with(backend_name: str, key: PublicKey, message: bytes, sig64: bytes) -> bool:
    """verify() through a named backend (tests compare them)."""
    if backend_name == "native":
        if _lib is None:
            raise ConfigError("the native backend is not built")
        return _verify_native(key, message, sig64)
    if backend_name == "cryptography":
        return _verify_crypto(key, message, sig64)
    raise ConfigError(f"unknown backend {backend_name!r}")


def backends() -> list:
    """The backends available in this installation."""
    return (["native"] if _lib is not None else []) + ["cryptography"]


def backend() -> str:
    """The backend in use: "native" or "cryptography"."""
    return _BACKEND


def native_info() -> Optional[dict]:
    """Sizes of the native engine's memory, or None without it."""
    if _lib is None:
        return None
    return {"version": _lib.mv_version(), "table_bytes": _lib.mv_table_size(),
            "scratch_bytes": _lib.mv_scratch_size()}
