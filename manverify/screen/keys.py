"""Keyed hashes of telephone numbers: what the counters store instead of the numbers.

Numbers are personal data (GDPR art. 4: a telephone number identifies its subscriber). A plain hash
would not hide them: the French plan has about 10^9 numbers, hashed in seconds. An HMAC with a
secret the store never sees cannot be reversed by whoever reads the store. Every proxy that shares a
store must share the secret, or their keys (hence their counts) differ.

Cost. Every screened call derives three keys (calling number, callee, pair). `hmac.digest` costs
~10 us on OpenSSL 3 (it looks the digest up again on each call), so the HMAC is computed from the
two SHA-256 states of the padded secret, hashed once: the same bytes as `hmac.digest` (RFC 2104,
tested), a fifth of the cost. Numbers repeat in traffic, so `key()` also keeps the last numbers'
keys in a bounded dict (cleared when full). It is process memory next to the secret itself, which
already lets whoever reads that memory compute any key; it is never written to the store.

The pair stays an HMAC. An unkeyed hash of the two number keys would cost a little less, but the
store holds both (the calling number's key in the pair's hash tag, the callee's in its `flood`
key): its reader could then hash every (caller, callee) couple it holds and recover who called whom
over 30 days, under pseudonyms. Keyed, the pair key links to nothing without the secret.
"""
from __future__ import annotations

import hashlib
import os
from typing import Dict, Union

from ..errors import ConfigError

KEY_BYTES = 16  # 128 bits: collisions need ~2^64 numbers, far beyond any plan
MIN_SECRET_BYTES = 16
CACHE_NUMBERS = 32_768  # ~4 MB at most; cleared, not evicted one by one, when full

_BLOCK = 64  # SHA-256's block: HMAC pads the secret to it (RFC 2104)
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class Keyer:
    """`key(e164)` -> 16 bytes, the same for every process holding the same secret.

    Domains are separated (a number, a pair, a derived tuple never hash to the same input), so a
    pair key cannot be mistaken for a number's key. Thread-safe (the cache is a dict: a lost
    insert costs one HMAC later)."""

    __slots__ = ("_inner", "_outer", "_cache", "_cache_max")

    def __init__(self, secret: Union[bytes, str], cache: int = CACHE_NUMBERS):
        if isinstance(secret, str):
            secret = secret.encode("utf-8")
        if not isinstance(secret, (bytes, bytearray)):
            raise ConfigError("key_secret: a string or bytes")
        if len(secret) < MIN_SECRET_BYTES:
            # a short secret can be brute-forced together with the small space of numbers
            raise ConfigError(f"key_secret: at least {MIN_SECRET_BYTES} bytes")
        secret = bytes(secret)
        if len(secret) > _BLOCK:
            secret = hashlib.sha256(secret).digest()
        secret = secret.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(secret.translate(_IPAD))
        self._outer = hashlib.sha256(secret.translate(_OPAD))
        self._cache: Dict[str, bytes] = {}
        self._cache_max = cache

    @classmethod
    def random(cls) -> "Keyer":
        """A secret of this process only: fine for local counters, useless for a shared store."""
        return cls(os.urandom(32))

    def _mac(self, msg: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(msg)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:KEY_BYTES]

    def key(self, e164: str) -> bytes:
        k = self._cache.get(e164)
        if k is None:
            k = self._mac(b"n\0" + e164.encode("utf-8", "surrogatepass"))
            cache = self._cache
            if len(cache) >= self._cache_max:
                cache.clear()
            cache[e164] = k
        return k

    def pair(self, orig_key: bytes, dest_key: bytes) -> bytes:
        """The key of the ordered pair orig -> dest (made from the two number keys)."""
        return self._mac(b"p\0" + orig_key + dest_key)

    def derive(self, label: str, *parts: Union[bytes, str]) -> bytes:
        """The key of any tuple, e.g. derive("customer-dest", "acme", dest_key): a new series'
        subject without a new hashing scheme. Each part is length-prefixed, so ("ab", "c") and
        ("a", "bc") differ."""
        msg = bytearray(b"d\0")
        for part in (label,) + parts:
            raw = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else bytes(part)
            msg += len(raw).to_bytes(4, "big") + raw
        return self._mac(bytes(msg))

    def __repr__(self) -> str:  # never the secret
        return "Keyer(<secret>)"


def mask(number: str) -> str:
    """A number as logs may show it: the first four and last two characters, e.g. "+336******78".

    Enough to tell a range or a mistake apart, not enough to call anyone."""
    s = str(number)
    if len(s) <= 6:
        return "*" * len(s)
    return s[:4] + "*" * (len(s) - 6) + s[-2:]
