"""The signature boundary: ES256 (ECDSA P-256 / SHA-256, raw r||s) verification.

This is the only module that touches a signature backend, and the only gateway to the compiled
`manverify._native` (scan.py reaches the engine's PASSporT scanner through shaken_scan() below):
every engine call goes through here and every return code through one table (_VERDICTS and
_REFUSALS). Two backends sit behind one interface:
  native        the C engine in native/: per-key precomputed tables, GIL released during calls
  cryptography  OpenSSL through `cryptography`, used when the extension is not built

MANVERIFY_BACKEND=native|cryptography forces one (forcing native when it is missing is an error).

A verdict is only ever "valid" or "invalid". When the engine refuses its own arguments (a table not
filled by mv_key_load, a length that does not fit) that is a fault in manverify or its build, never
a verdict on the call: EngineError is raised (an integration answers 500 and logs it).
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from itertools import accumulate
from pathlib import Path
from typing import Optional, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import ConfigError, EngineError, InvalidKey

try:  # the C engine is optional: an install without a compiler still works
    from ._native import ffi as _ffi, lib as _lib
    _NO_NATIVE = ""
except ImportError as e:  # pragma: no cover - exercised by the no-compiler CI step
    _ffi = _lib = None
    _skipped = Path(__file__).with_name("_native_skipped.txt")  # left by setup.py when it skipped the build
    _NO_NATIVE = (f"the native engine was not built at install time: {_skipped.read_text().strip()}"
                  if _skipped.exists() else f"manverify._native does not import: {e}")

_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_G = bytes.fromhex(
    "04"
    "6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296"
    "4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5"
)

# The engine's return codes (native/mv.h, read from the build) and what each becomes here: the one
# table. MV_VALID and MV_INVALID are the only verdicts; MV_OK (0) is success for the calls that are
# not verdicts; every other code raises EngineError with its meaning. MV_EPOINT included: load_key
# has already refused what is not a P-256 point (InvalidKey), so the engine refusing a point
# `cryptography` accepted is a fault, not a verdict on the key.
if _lib is not None:
    _OK = _lib.MV_OK
    _VERDICTS = {_lib.MV_VALID: True, _lib.MV_INVALID: False}
    _REFUSALS = {
        _lib.MV_EARG: "MV_EARG, a length or pointer is wrong",
        _lib.MV_EPOINT: "MV_EPOINT, the public key is not a point of P-256",
        _lib.MV_ETABLE: "MV_ETABLE, a table was not filled by mv_key_load",
    }


def _refused(function: str, code: int) -> EngineError:
    meaning = _REFUSALS.get(code, "a code manverify does not know")
    return EngineError(f"the native engine refused its arguments: {function} returned {code} ({meaning})")


def _check(function: str, code: int) -> None:
    """Success, or the engine's refusal raised."""
    if code != _OK:
        raise _refused(function, code)


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
    _check("mv_key_load", _lib.mv_key_load(table, len(table), scratch, len(scratch), point, len(point)))
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
    code = _lib.mv_verify(_GTABLE, key._table, message, len(message), sig64, len(sig64))
    try:
        return _VERDICTS[code]
    except KeyError:
        raise _refused("mv_verify", code) from None


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
        code = _lib.mv_verify_batch_packed(gtable, tables + lo, msgs_c, len(blob), offsets + lo,
                                           sigs_c + 64 * lo, 64 * (hi - lo), out + lo, hi - lo)
        _check("mv_verify_batch_packed", code)

    threads = max(1, min(threads, n // _MIN_PER_THREAD or 1))
    if threads == 1:
        run(0, n)
    else:
        step = -(-n // threads)
        futures = [_executor(threads).submit(run, lo, min(n, lo + step)) for lo in range(step, n, step)]
        run(0, step)  # this thread takes the first share
        for f in futures:
            f.result()
    codes = _ffi.unpack(out, n)
    try:
        return [_VERDICTS[code] for code in codes]
    except KeyError as e:  # an item the engine refused (e.g. a key without its table)
        raise _refused("mv_verify_batch_packed", e.args[0]) from None


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


class _ScanBuffers:
    """One thread's arguments to mv_shaken_scan, reused (allocating them costs more than a scan)."""

    __slots__ = ("n", "out_len", "offsets", "out", "used")

    def __init__(self, n: int, out_len: int):
        self.n, self.out_len = n, out_len
        self.offsets = _ffi.new("size_t[]", n + 1)
        self.out = _ffi.new("unsigned char[]", out_len)
        self.used = _ffi.new("size_t *")


_local = threading.local()
_KEEP_BYTES = 1 << 20  # a thread keeps buffers up to this size (verify_many's chunks fit); larger are one-off


def _scan_buffers(n: int, out_len: int) -> _ScanBuffers:
    if out_len > _KEEP_BYTES:
        return _ScanBuffers(n, out_len)
    b = getattr(_local, "scan_buffers", None)
    if b is None or b.n < n or b.out_len < out_len:
        b = _ScanBuffers(max(n, b.n if b else 1), max(out_len, b.out_len if b else 10240))
        _local.scan_buffers = b
    return b


SCAN_RECORD = _lib.MV_SCAN_RECORD if _lib is not None else 0  # bytes per token before the lines


def shaken_scan(tokens: bytes, ends: Sequence[int]) -> bytes:
    """The engine's PASSporT scanner (mv_shaken_scan, native/mv.h; scan.py reads its output) over
    the tokens packed in `tokens`, token i ending at ends[i] (and starting where token i - 1 ends):
    a record of SCAN_RECORD bytes per token, then a line per token. Native backend only."""
    n = len(ends)
    b = _scan_buffers(n, (SCAN_RECORD + 1) * n + len(tokens))
    b.offsets[1:n + 1] = ends  # offsets[0] is 0 from the allocation on, never written
    _check("mv_shaken_scan", _lib.mv_shaken_scan(tokens, len(tokens), b.offsets, n, b.out, b.out_len, b.used))
    return _ffi.buffer(b.out, b.used[0])[:]


def shaken_scan_one(token: bytes) -> bytes:
    """shaken_scan(token, [len(token)]) without the packing (the per-call path: _check inlined)."""
    b = _scan_buffers(1, SCAN_RECORD + 1 + len(token))
    b.offsets[1] = len(token)
    code = _lib.mv_shaken_scan(token, len(token), b.offsets, 1, b.out, b.out_len, b.used)
    if code != _OK:
        raise _refused("mv_shaken_scan", code)
    return _ffi.buffer(b.out, b.used[0])[:]


def verify(key: PublicKey, message: bytes, sig64: bytes) -> bool:
    """True iff sig64 (raw 64-byte r||s) is a valid ES256 signature of message under key.

    Raises EngineError, never answers, when the native engine refuses its arguments."""
    if _BACKEND == "native":
        return _verify_native(key, message, sig64)
    return _verify_crypto(key, message, sig64)


def verify_many(keys: Sequence[PublicKey], messages: Sequence[bytes], sigs: Sequence[bytes],
                threads: int = 1) -> list:
    """Verify a batch; results in input order. The native path is one packed C call per thread
    (GIL released) with one modular inversion per 64 signatures; threads > 1 splits the batch
    over that many threads (this one included). When the engine refuses any item or the call
    (EngineError), the whole batch raises: no item gets a verdict."""
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


def backend_reason() -> Optional[str]:
    """Why the backend is not "native", in words for an operator; None when it is."""
    if _BACKEND == "native":
        return None
    return "MANVERIFY_BACKEND=cryptography" if _lib is not None else _NO_NATIVE


def backend_line() -> str:
    """The backend in use and, when it is not "native", why: what `manverify --version` prints
    and every benchmark states."""
    reason = backend_reason()
    return _BACKEND + (f" ({reason})" if reason else "")


def native_info() -> Optional[dict]:
    """The native engine's ABI version, memory sizes and the CPU paths it chose on this machine
    (what a benchmark figure depends on), or None without it."""
    if _lib is None:
        return None
    features = _lib.mv_features()
    return {"version": _lib.mv_version(), "table_bytes": _lib.mv_table_size(),
            "scratch_bytes": _lib.mv_scratch_size(),
            "cpu": [name for bit, name in ((1, "sha-ni"), (2, "mulx/adx")) if features & bit]}
