"""The two outcomes of asking for a signer's credential."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

from ..es256 import PublicKey


@dataclass(frozen=True)
class Credential:
    """A signer certificate that passed every trust check, with its loaded key.

    Built once when the certificate enters the cache; the per-call path only reads it.
    """

    x5u: str
    key: PublicKey
    not_before: float  # epoch seconds
    not_after: float
    spc: Optional[str] = None  # Service Provider Code from TNAuthList
    tn_ranges: Tuple[Tuple[str, int], ...] = ()  # TNAuthList ranges (start, count)
    tn_ones: Tuple[str, ...] = ()  # TNAuthList single numbers
    subject: str = ""
    fingerprint: str = ""  # SHA-256 of the signer certificate DER, hex
    policies: Tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class CredentialError:
    """Why no credential: 436 (cannot be obtained/parsed) or 437 (obtained but not acceptable)."""

    code: int
    detail: str
