"""The STI end-entity certificate profile (RFC 8226, ATIS-1000080, MAN certificate policy v1.0).

check_end_entity() returns "" when the signer certificate fits the profile, or what does not.
Chain-level rules (signatures, validity, CA constraints) belong to path validation in store.py.
"""
from __future__ import annotations

import re
from typing import Optional, Tuple

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import SignatureAlgorithmOID

from . import tnauthlist

MAN_POLICY = "1.2.250.1.695.1.1.1.0"
ATIS_POLICY_PREFIX = "2.16.840.1.114569.1.1."
_TNAUTHLIST_OID = x509.ObjectIdentifier(tnauthlist.OID)
_SPC = re.compile(r"[A-Za-z0-9]{1,16}\Z")  # compared and reported in upper case (live: "558a")
# The issuer's signature on the signer certificate: a P-384 CA signs its P-256 leaves with SHA-384
# (SHAKEN CP §6.1.5), as a national root's intermediate does today. The leaf's own key stays P-256.
_ISSUER_SIGNATURES = (SignatureAlgorithmOID.ECDSA_WITH_SHA256, SignatureAlgorithmOID.ECDSA_WITH_SHA384)


def policy_oids(cert: x509.Certificate) -> Tuple[str, ...]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.CertificatePolicies)
    except x509.ExtensionNotFound:
        return ()
    return tuple(p.policy_identifier.dotted_string for p in ext.value)


def tn_auth_list(cert: x509.Certificate) -> Optional[tnauthlist.TNAuthList]:
    """The decoded TNAuthList, None when absent; raises TNAuthListError when malformed."""
    try:
        ext = cert.extensions.get_extension_for_oid(_TNAUTHLIST_OID)
    except x509.ExtensionNotFound:
        return None
    value = ext.value
    der = value.value if isinstance(value, x509.UnrecognizedExtension) else value.public_bytes()
    return tnauthlist.decode(der)


def check_end_entity(cert: x509.Certificate, profile: str, accept_missing_policy: bool = True) -> str:
    """"" if `cert` may sign PASSporTs under `profile` ("man", "atis", "rfc"), else the reason."""
    try:
        key = cert.public_key()
    except (ValueError, TypeError) as e:
        return f"public key cannot be read: {e}"
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        curve = getattr(getattr(key, "curve", None), "name", type(key).__name__)
        return f"key is {curve}, ES256 needs P-256"
    strict = profile in ("man", "atis")
    try:
        sig_oid = cert.signature_algorithm_oid
    except ValueError:
        sig_oid = None
    if strict and sig_oid not in _ISSUER_SIGNATURES:
        return "certificate is not signed with ecdsa-with-SHA256 or ecdsa-with-SHA384"
    try:
        exts = cert.extensions
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as e:
        return f"extensions cannot be parsed: {e}"
    try:
        bc = exts.get_extension_for_class(x509.BasicConstraints).value
        if bc.ca:
            return "BasicConstraints says CA=true on the signer certificate"
    except x509.ExtensionNotFound:
        if strict:
            return "BasicConstraints is missing"
    try:
        ku_ext = exts.get_extension_for_class(x509.KeyUsage)
        if not ku_ext.value.digital_signature:
            return "KeyUsage lacks digitalSignature"
        if strict and not ku_ext.critical:
            return "KeyUsage is not marked critical"
    except x509.ExtensionNotFound:
        if strict:
            return "KeyUsage is missing"
    try:
        tn_auth = tn_auth_list(cert)
    except tnauthlist.TNAuthListError as e:
        return f"TNAuthList is malformed: {e}"
    if strict:
        if tn_auth is None:
            return "TNAuthList (1.3.6.1.5.5.7.1.26) is missing"
        if len(tn_auth.spcs) != 1 or tn_auth.ranges or tn_auth.ones:
            return "TNAuthList must hold exactly one SPC"
        if not _SPC.match(tn_auth.spcs[0]):
            return f"SPC {tn_auth.spcs[0]!r} is not 1-16 characters of A-Z 0-9 (either case)"
    policies = policy_oids(cert)
    if profile == "man":
        if not policies and not accept_missing_policy:
            return "certificate policies extension is missing (MAN CP 1.2.250.1.695.1.1.1.0 required)"
        if policies and MAN_POLICY not in policies:
            return f"certificate policies {list(policies)} do not include MAN CP {MAN_POLICY}"
    elif profile == "atis":
        if not any(p.startswith(ATIS_POLICY_PREFIX) for p in policies):
            return f"certificate policies {list(policies)} include no SHAKEN policy {ATIS_POLICY_PREFIX}x"
    return ""
