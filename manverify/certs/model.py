"""The two outcomes of asking for a signer's credential."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

from ..es256 import PublicKey

MAX_CHAIN_BYTES = 64 * 1024  # a certificate chain is never larger: anything larger is refused unread


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
    """Why no credential: 436 (cannot be obtained/parsed) or 437 (obtained but not acceptable).

    `detail` is for humans; `reason` is a short stable slug for counters and alerts (the keys of
    CertStore.stats()["rejections_by_reason"]): fetch-<kind> (url, dns, address, connect, tls,
    timeout, redirect, http-status, content-type, oversized, protocol), not-in-local-copy,
    oversized, unparsable, too-many-certs, busy, profile, no-common-validity, untrusted,
    expired, not-yet-valid, spc-not-allowed, bad-key, revoked, crl-unavailable.
    """

    code: int
    detail: str
    reason: str = ""
