"""Certification path validation (RFC 5280 §6.1), for the chains STI uses.

Why not cryptography's verifier (x509.verification): its extension policies cannot declare
CertificatePolicies (one large SHAKEN issuer marks it critical on leaf, intermediate and root,
and manverify reads that extension itself, so RFC 5280 §4.2 lets it be critical), and it demands
KeyUsage of the trust anchor, which RFC 5280 §6.1.1 trusts as configured. What it checked is
checked here, in one place:
  - each certificate is signed by the next (cryptography's verify_directly_issued_by: issuer name
    and signature), with ecdsa-with-SHA256/384/512 by an issuer key on P-256/384/521;
  - each certificate of the path is valid at the given time;
  - every CA below the anchor has BasicConstraints (critical, cA true) and KeyUsage keyCertSign;
    pathLenConstraint is honoured, the anchor's included;
  - no certificate below the anchor carries a critical extension manverify does not process, and
    none in the path carries name constraints (STI does not use them; refused rather than ignored).
The end-entity profile (key, KeyUsage, TNAuthList, policy) is profile.py's.
"""
from __future__ import annotations

import datetime as _dt
from typing import Dict, Iterable, List, Optional, Sequence

from cryptography import exceptions as _exceptions
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, SignatureAlgorithmOID

MAX_DEPTH = 8  # certificates in a path, the anchor included
MAX_SIGNATURE_CHECKS = 32  # a chain of look-alike issuers cannot make path building explode

_SIGNATURES = frozenset((SignatureAlgorithmOID.ECDSA_WITH_SHA256, SignatureAlgorithmOID.ECDSA_WITH_SHA384,
                         SignatureAlgorithmOID.ECDSA_WITH_SHA512))
_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
_TNAUTHLIST = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.26")
_PROCESSED_CA = frozenset((ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.KEY_USAGE,
                           ExtensionOID.CERTIFICATE_POLICIES, ExtensionOID.EXTENDED_KEY_USAGE))
_PROCESSED_EE = _PROCESSED_CA | {ExtensionOID.SUBJECT_ALTERNATIVE_NAME, _TNAUTHLIST}


class PathError(Exception):
    """No valid path from the certificate to a trust anchor; the message says why."""


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or f"serial {cert.serial_number:x}"


def _extensions(cert: x509.Certificate) -> x509.Extensions:
    try:
        return cert.extensions
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as e:
        raise PathError(f"extensions of {_name(cert)} cannot be parsed: {e}") from None


def _ext(exts: x509.Extensions, oid) -> Optional[x509.Extension]:
    try:
        return exts.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return None


class Anchors:
    """The configured trust anchors, found by subject name."""

    def __init__(self, certs: Iterable[x509.Certificate]):
        self._by_subject: Dict[x509.Name, List[x509.Certificate]] = {}
        for c in certs:
            self._by_subject.setdefault(c.subject, []).append(c)

    def issuers_of(self, cert: x509.Certificate) -> List[x509.Certificate]:
        return self._by_subject.get(cert.issuer, [])


def validate(leaf: x509.Certificate, intermediates: Sequence[x509.Certificate], anchors: Anchors,
             at: _dt.datetime) -> List[x509.Certificate]:
    """The path [leaf, intermediates…, anchor] valid at `at`; PathError when there is none."""
    state = {"checks": 0, "error": None}
    _check_certificate(leaf, at, _PROCESSED_EE)
    path = _extend([leaf], list(intermediates), anchors, at, state)
    if path is None:
        raise PathError(state["error"] or f"no issuer of {_name(leaf)} ({leaf.issuer.rfc4514_string()}) "
                                          f"leads to a trust anchor")
    return path


def _extend(path, intermediates, anchors, at, state) -> Optional[List[x509.Certificate]]:
    cert = path[-1]
    for issuer in anchors.issuers_of(cert):
        if _link(cert, issuer, state):
            try:
                if not issuer.not_valid_before_utc <= at <= issuer.not_valid_after_utc:
                    raise PathError(f"the trust anchor {_name(issuer)} is not valid at {at:%Y-%m-%d %H:%M:%SZ}")
                _path_lengths(path + [issuer])
                _no_name_constraints(issuer)
            except PathError as e:
                state["error"] = str(e)
                continue
            return path + [issuer]
    if len(path) + 1 >= MAX_DEPTH:
        state["error"] = state["error"] or f"no trust anchor within {MAX_DEPTH} certificates"
        return None
    for issuer in intermediates:
        if issuer.subject != cert.issuer or any(issuer is p for p in path):
            continue
        try:
            _check_certificate(issuer, at, _PROCESSED_CA)
            _check_ca(issuer)
        except PathError as e:
            state["error"] = str(e)
            continue
        if _link(cert, issuer, state):
            found = _extend(path + [issuer], intermediates, anchors, at, state)
            if found is not None:
                return found
    return None


def _link(cert: x509.Certificate, issuer: x509.Certificate, state) -> bool:
    """Whether `issuer` signed `cert` with an algorithm STI allows; the reason is kept if not."""
    if state["checks"] >= MAX_SIGNATURE_CHECKS:
        state["error"] = f"more than {MAX_SIGNATURE_CHECKS} candidate issuers tried"
        return False
    state["checks"] += 1
    try:
        algorithm = cert.signature_algorithm_oid
        key = issuer.public_key()
    except (ValueError, TypeError, _exceptions.UnsupportedAlgorithm) as e:
        state["error"] = f"the signature of {_name(cert)} cannot be checked: {e}"
        return False
    if algorithm not in _SIGNATURES or not isinstance(key, ec.EllipticCurvePublicKey) \
            or not isinstance(key.curve, _CURVES):
        state["error"] = (f"{_name(cert)} is signed with {getattr(algorithm, '_name', algorithm)} by a "
                          f"{getattr(getattr(key, 'curve', None), 'name', type(key).__name__)} key: only ECDSA "
                          f"with SHA-256/384/512 on P-256/384/521 is accepted")
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, _exceptions.InvalidSignature, _exceptions.UnsupportedAlgorithm) as e:
        state["error"] = f"the signature of {_name(cert)} by {_name(issuer)} does not verify" + (
            f": {e}" if str(e) else "")
        return False
    return True


def _check_certificate(cert: x509.Certificate, at: _dt.datetime, processed: frozenset) -> None:
    """Validity at `at`, and no critical extension manverify does not process."""
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise PathError(f"{_name(cert)} is not valid at {at:%Y-%m-%d %H:%M:%SZ}")
    exts = _extensions(cert)
    for e in exts:
        if e.critical and e.oid not in processed:
            raise PathError(f"{_name(cert)} carries a critical extension manverify does not process: "
                            f"{e.oid.dotted_string}")
    _no_name_constraints(cert)


def _no_name_constraints(cert: x509.Certificate) -> None:
    if _ext(_extensions(cert), ExtensionOID.NAME_CONSTRAINTS) is not None:
        raise PathError(f"{_name(cert)} carries name constraints, which STI does not use and manverify "
                        f"does not process")


def _check_ca(cert: x509.Certificate) -> None:
    """What an intermediate CA must assert (RFC 5280 §4.2.1.3, §4.2.1.9)."""
    exts = _extensions(cert)
    bc = _ext(exts, ExtensionOID.BASIC_CONSTRAINTS)
    if bc is None:
        raise PathError(f"BasicConstraints (2.5.29.19) is missing on the CA {_name(cert)}")
    if not bc.critical:
        raise PathError(f"BasicConstraints (2.5.29.19) is not critical on the CA {_name(cert)}")
    if not bc.value.ca:
        raise PathError(f"{_name(cert)} issues certificates, but its BasicConstraints cA must be asserted")
    ku = _ext(exts, ExtensionOID.KEY_USAGE)
    if ku is None or not ku.value.key_cert_sign:
        raise PathError(f"KeyUsage of the CA {_name(cert)} must assert keyCertSign")


def _path_lengths(path: List[x509.Certificate]) -> None:
    """Each CA's pathLenConstraint bounds the non-self-issued intermediates below it."""
    below = 0  # non-self-issued intermediates between the CA being looked at and the leaf
    for i in range(1, len(path)):
        ca = path[i]
        bc = _ext(_extensions(ca), ExtensionOID.BASIC_CONSTRAINTS)
        if bc is not None and bc.value.path_length is not None and below > bc.value.path_length:
            raise PathError(f"the path length constraint of {_name(ca)} ({bc.value.path_length}) is exceeded "
                            f"by {below} intermediate CA(s) below it")
        if ca.subject != ca.issuer:
            below += 1
