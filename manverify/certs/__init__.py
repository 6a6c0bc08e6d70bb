"""Certificates: from an x5u URL to a trusted, cached Credential (RFC 8226, ATIS-1000080, MAN CP).

The contract the verification pipeline relies on:

    store = CertStore(trust_anchors=[...], certificates=..., crls=..., cache_dir=..., allow_http=...,
                      profile="man")
    outcome = store.credential(x5u, now)   # never raises for call data
    if isinstance(outcome, CredentialError): outcome.code in (436, 437), outcome.detail
    else: outcome is a Credential (key, spc, not_before, not_after, ...)
"""
from .model import Credential, CredentialError  # noqa: F401
from .options import PROFILES, StoreOptions  # noqa: F401
from .store import CertStore  # noqa: F401
from .trust import SkippedAnchor  # noqa: F401
