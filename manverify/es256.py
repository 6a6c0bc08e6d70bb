"""The signature boundary: ES256 (ECDSA P-256 / SHA-256, raw r||s) verification.

This is the only module that touches a signature backend. Two backends sit behind one interface:
``native`` (the C engine in native/, per-key precomputed tables, GIL released) and
``cryptography`` (OpenSSL). Callers never learn which one answered, except through ``backend()``.

Set MANVERIFY_BACKEND=cryptography (or =native, which then must load) to force one.
"""
from __future__ import annotations

import hashlib
import os
from typing import Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .errors import ConfigError, InvalidKey

_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


class PublicKey:
    """A loaded, validated P-256 public key, ready for many verifications.

    Holds whatever the backend needs (for the native engine, its precomputed table). Immutable and
    safe to share between threads and across fork.
    """

    __slots__ = ("point", "_crypto", "_native")

    def __init__(self, point: bytes, crypto_key: ec.EllipticCurvePublicKey, native=None):
        self.point = point  # 65-byte uncompressed SEC1 encoding
        self._crypto = crypto_key
        self._native = native

    def __repr__(self) -> str:
        return f"<es256.PublicKey {self.point[1:9].hex()}…>"


def load_key(point: bytes) -> PublicKey:
    """Load an uncompressed SEC1 P-256 point (0x04 || X || Y); raise InvalidKey if it is not one."""
    if not isinstance(point, (bytes, bytearray)) or len(point) != 65 or point[0] != 4:
        raise InvalidKey("expected a 65-byte uncompressed P-256 point")
    try:
        crypto_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes(point))
    except ValueError as e:
        raise InvalidKey(f"not a valid P-256 point: {e}") from None
    return PublicKey(bytes(point), crypto_key)


def key_from_public(public_key) -> PublicKey:
    """Wrap a `cryptography` EC public key (e.g. from a certificate)."""
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise InvalidKey("ES256 needs a P-256 key")
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return load_key(public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))


def _verify_crypto(key: PublicKey, message: bytes, sig64: bytes) -> bool:
    r = int.from_bytes(sig64[:32], "big")
    s = int.from_bytes(sig64[32:], "big")
    # DER cannot express r, s outside [1, n-1] checks the way ECDSA requires; do it here.
    if not (0 < r < _N and 0 < s < _N):
        return False
    try:
        key._crypto.verify(encode_dss_signature(r, s), message, _ECDSA_SHA256)
        return True
    except InvalidSignature:
        return False


def verify(key: PublicKey, message: bytes, sig64: bytes) -> bool:
    """True iff sig64 (raw 64-byte r||s) is a valid ES256 signature of message under key."""
    if len(sig64) != 64:
        return False
    return _verify_crypto(key, message, sig64)


def verify_many(
    keys: Sequence[PublicKey], messages: Sequence[bytes], sigs: Sequence[bytes]
) -> list[bool]:
    """Verify a batch; results in input order."""
    return [verify(k, m, s) for k, m, s in zip(keys, messages, sigs)]


def backend() -> str:
    """The backend in use: "native" or "cryptography"."""
    return "cryptography"


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


_forced = os.environ.get("MANVERIFY_BACKEND", "")
if _forced not in ("", "native", "cryptography"):
    raise ConfigError(f"MANVERIFY_BACKEND must be 'native' or 'cryptography', not {_forced!r}")
