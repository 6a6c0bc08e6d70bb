"""Keyed hashes of telephone numbers: what the counters store instead of the numbers.

Numbers are personal data (GDPR art. 4: a telephone number identifies its subscriber). A plain hash
would not hide them: the French plan has about 10^9 numbers, hashed in seconds. An HMAC with a
secret the store never sees cannot be reversed by whoever reads the store. Every proxy that shares a
store must share the secret, or their keys (hence their counts) differ.
"""
from __future__ import annotations

import hmac
import os
from typing import Union

from ..errors import ConfigError

KEY_BYTES = 16  # 128 bits: collisions need ~2^64 numbers, far beyond any plan
MIN_SECRET_BYTES = 16


class Keyer:
    """`key(e164)` -> 16 bytes, the same for every process holding the same secret.

    Domains are separated (a number, a pair, a derived tuple never hash to the same input), so a
    pair key cannot be mistaken for a number's key."""

    __slots__ = ("_secret",)

    def __init__(self, secret: Union[bytes, str]):
        if isinstance(secret, str):
            secret = secret.encode("utf-8")
        if not isinstance(secret, (bytes, bytearray)):
            raise ConfigError("key_secret: a string or bytes")
        if len(secret) < MIN_SECRET_BYTES:
            # a short secret can be brute-forced together with the small space of numbers
            raise ConfigError(f"key_secret: at least {MIN_SECRET_BYTES} bytes")
        self._secret = bytes(secret)

    @classmethod
    def random(cls) -> "Keyer":
        """A secret of this process only: fine for local counters, useless for a shared store."""
        return cls(os.urandom(32))

    def key(self, e164: str) -> bytes:
        return hmac.digest(self._secret, b"n\0" + e164.encode("utf-8", "surrogatepass"), "sha256")[:KEY_BYTES]

    def pair(self, orig_key: bytes, dest_key: bytes) -> bytes:
        """The key of the ordered pair orig -> dest (made from the two number keys)."""
        return hmac.digest(self._secret, b"p\0" + orig_key + dest_key, "sha256")[:KEY_BYTES]

    def derive(self, label: str, *parts: Union[bytes, str]) -> bytes:
        """The key of any tuple, e.g. derive("customer-dest", "acme", dest_key): a new series'
        subject without a new hashing scheme. Each part is length-prefixed, so ("ab", "c") and
        ("a", "bc") differ."""
        msg = bytearray(b"d\0")
        for part in (label,) + parts:
            raw = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else bytes(part)
            msg += len(raw).to_bytes(4, "big") + raw
        return hmac.digest(self._secret, bytes(msg), "sha256")[:KEY_BYTES]

    def __repr__(self) -> str:  # never the secret
        return "Keyer(<secret>)"


def mask(number: str) -> str:
    """A number as logs may show it: the first four and last two characters, e.g. "+336******78".

    Enough to tell a range or a mistake apart, not enough to call anyone."""
    s = str(number)
    if len(s) <= 6:
        return "*" * len(s)
    return s[:4] + "*" * (len(s) - 6) + s[-2:]
