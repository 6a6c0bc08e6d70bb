"""Throwaway STIR/SHAKEN PKIs for the demo, the tests and labs: root CA → intermediate → signer.

Certificates follow the SHAKEN/MAN end-entity profile (P-256, KeyUsage digitalSignature,
BasicConstraints CA=false, TNAuthList with one SPC, MAN certificate policy) unless told otherwise,
so that tests can also build every way a certificate can be wrong.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Optional, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .certs import _der, tnauthlist

MAN_POLICY_OID = "1.2.250.1.695.1.1.1.0"
ATIS_POLICY_OID = "2.16.840.1.114569.1.1.1"
_DAY = _dt.timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "manverify lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _when(t) -> _dt.datetime:
    if isinstance(t, _dt.datetime):
        return t
    if t is None:
        return _dt.datetime.now(_dt.timezone.utc)
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc)


def _key_usage(**set_bits) -> x509.KeyUsage:
    """A KeyUsage with only the named bits set (e.g. _key_usage(key_cert_sign=True))."""
    bits = dict(digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False)
    bits.update(set_bits)
    return x509.KeyUsage(**bits)


def _builder(subject, issuer, public_key, not_before, not_after, serial=None):
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def make_ca(
    cn: str = "manverify lab root",
    issuer: Optional[Issued] = None,
    *,
    curve: ec.EllipticCurve = None,
    now=None,
    days: int = 3650,
    path_length: Optional[int] = None,
    crl_issuer: bool = True,
    key_usage: bool = True,
    policy: Optional[str] = None,
    policy_critical: bool = False,
    hash_alg: hashes.HashAlgorithm = None,
) -> Issued:
    """A root CA (issuer=None) or an intermediate CA signed by `issuer`.

    The shapes of production SHAKEN CAs: `curve=ec.SECP384R1()` with `hash_alg=hashes.SHA384()`,
    a root without KeyUsage (`key_usage=False`), CertificatePolicies marked critical
    (`policy=ATIS_POLICY_OID, policy_critical=True`)."""
    key = ec.generate_private_key(curve or ec.SECP256R1())
    start = _when(now) - _DAY
    b = _builder(_name(cn), issuer.cert.subject if issuer else _name(cn), key.public_key(),
                 start, start + days * _DAY)
    b = b.add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
    if key_usage:
        b = b.add_extension(_key_usage(key_cert_sign=True, crl_sign=crl_issuer), critical=True)
    if policy is not None:
        b = b.add_extension(_policies(policy), critical=policy_critical)
    signing = issuer.key if issuer else key
    if issuer:
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    return Issued(b.sign(signing, hash_alg or hashes.SHA256()), key)


def _policies(oid: str) -> x509.CertificatePolicies:
    return x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(oid), None)])


def make_signer(
    issuer: Issued,
    cn: str = "manverify lab signer",
    *,
    spc: Optional[str] = "1001",
    tn_ranges: Sequence[tuple] = (),
    tn_ones: Sequence[str] = (),
    policy: Optional[str] = MAN_POLICY_OID,
    key: Optional[ec.EllipticCurvePrivateKey] = None,
    curve: ec.EllipticCurve = None,
    now=None,
    not_before=None,
    not_after=None,
    days: int = 365,
    crl_url: Optional[str] = None,
    crl_issuer_name: Optional[x509.Name] = None,
    key_usage: bool = True,
    ca: bool = False,
    extra_extensions: Sequence[tuple] = (),
    policy_critical: bool = False,
    hash_alg: hashes.HashAlgorithm = None,
) -> Issued:
    """An end-entity STI certificate; each keyword lets a test break one rule of the profile.
    `hash_alg`: the issuer's signature hash (a P-384 CA signs with SHA-384)."""
    key = key or ec.generate_private_key(curve or ec.SECP256R1())
    start = _when(not_before) if not_before is not None else _when(now) - _DAY
    end = _when(not_after) if not_after is not None else start + days * _DAY
    b = _builder(_name(cn), issuer.cert.subject, key.public_key(), start, end)
    b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    b = b.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
        critical=False,
    )
    if key_usage:
        b = b.add_extension(_key_usage(digital_signature=True), critical=True)
    if spc is not None or tn_ranges or tn_ones:
        der = tnauthlist.encode(spc=spc, ranges=tn_ranges, ones=tn_ones)
        b = b.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(tnauthlist.OID), der),
            critical=False,
        )
    if policy is not None:
        b = b.add_extension(_policies(policy), critical=policy_critical)
    if crl_url is not None:
        b = b.add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[x509.UniformResourceIdentifier(crl_url)],
                        relative_name=None,
                        reasons=None,
                        crl_issuer=[x509.DirectoryName(crl_issuer_name)]
                        if crl_issuer_name is not None
                        else None,
                    )
                ]
            ),
            critical=False,
        )
    for ext, critical in extra_extensions:
        b = b.add_extension(ext, critical=critical)
    return Issued(b.sign(issuer.key, hash_alg or hashes.SHA256()), key)


@dataclass(frozen=True)
class LabPKI:
    """Root → intermediate → signer, the shape of a MAN deployment (one STI-CA root)."""

    root: Issued
    intermediate: Issued
    signer: Issued
    x5u: str = "https://certs.example.fr/op1001.pem"
    extra: dict = field(default_factory=dict)

    @property
    def chain_pem(self) -> bytes:
        """What an x5u URL serves: the signer certificate, then the intermediate."""
        return self.signer.pem + self.intermediate.pem


def lab_pki(
    spc: str = "1001",
    x5u: str = "https://certs.example.fr/op1001.pem",
    *,
    now=None,
    root_curve: ec.EllipticCurve = None,
    **signer_kw,
) -> LabPKI:
    """A fresh root → intermediate → signer chain. A real SHAKEN root may be P-384: pass root_curve."""
    root = make_ca("manverify lab root", curve=root_curve, now=now)
    inter = make_ca("manverify lab intermediate", issuer=root, now=now, path_length=0)
    signer = make_signer(inter, f"manverify lab signer {spc}", spc=spc, now=now, **signer_kw)
    return LabPKI(root, inter, signer, x5u)


def make_crl_signer(issuer: Issued, cn: str = "manverify lab PA", *, now=None, days: int = 3650) -> Issued:
    """A CRL-signing certificate that is not a CA (MAN's "PA" signs the indirect CRL)."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = _when(now) - _DAY
    b = _builder(_name(cn), issuer.cert.subject, key.public_key(), start, start + days * _DAY)
    b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    b = b.add_extension(_key_usage(crl_sign=True), critical=True)
    b = b.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
    )
    return Issued(b.sign(issuer.key, hashes.SHA256()), key)


def make_crl(
    signer: Issued,
    revoked: Sequence = (),
    *,
    now=None,
    next_update_days: float = 7,
    this_update=None,
    indirect: bool = False,
) -> x509.CertificateRevocationList:
    """A CRL signed by `signer`. `revoked` holds certificates (or (serial, issuer Name) pairs);
    with indirect=True each entry names its certificate's issuer (CertificateIssuer)."""
    start = _when(this_update) if this_update is not None else _when(now) - _dt.timedelta(hours=1)
    b = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(signer.cert.subject)
        .last_update(start)
        .next_update(_when(now) + _dt.timedelta(days=next_update_days))
    )
    for item in revoked:
        serial, issuer_name = (item.serial_number, item.issuer) if isinstance(item, x509.Certificate) else item
        rb = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(start)
        if indirect:
            rb = rb.add_extension(x509.CertificateIssuer([x509.DirectoryName(issuer_name)]), critical=True)
        b = b.add_revoked_certificate(rb.build())
    if indirect:
        b = b.add_extension(
            x509.IssuingDistributionPoint(
                full_name=None, relative_name=None, only_contains_user_certs=False,
                only_contains_ca_certs=False, only_some_reasons=None, indirect_crl=True,
                only_contains_attribute_certs=False,
            ),
            critical=True,
        )
    return b.sign(signer.key, hashes.SHA256())


def crl_pem(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.PEM)


def make_intermediate(
    issuer: Issued,
    cn: str = "manverify lab intermediate",
    *,
    now=None,
    days: int = 3650,
    path_length: Optional[int] = None,
    basic_constraints: bool = True,
    ca: bool = True,
    bc_critical: bool = True,
    key_cert_sign: bool = True,
    eku: Optional[Sequence[str]] = None,
) -> Issued:
    """An intermediate CA with each CA rule breakable, for path-validation tests (make_ca builds
    only well-formed CAs). eku: dotted OIDs for an ExtendedKeyUsage extension."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = _when(now) - _DAY
    b = _builder(_name(cn), issuer.cert.subject, key.public_key(), start, start + days * _DAY)
    if basic_constraints:
        b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None),
                            critical=bc_critical)
    b = b.add_extension(_key_usage(key_cert_sign=key_cert_sign, crl_sign=True, digital_signature=not key_cert_sign),
                        critical=True)
    b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                        critical=False)
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage([x509.ObjectIdentifier(o) for o in eku]), critical=False)
    return Issued(b.sign(issuer.key, hashes.SHA256()), key)


# ---------------------------------------------------------------- shapes X.509 libraries refuse
# Certificates seen in production that cryptography's parser does not accept, built byte by byte
# (a library will not write them): to test that one of them in a configuration costs only itself.
_ECDSA_SHA256 = bytes.fromhex("06082a8648ce3d040302")


def _signed(tbs: bytes, key: ec.EllipticCurvePrivateKey, algorithm: bytes) -> bytes:
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return _der.tlv(0x30, tbs + algorithm + _der.tlv(0x03, b"\x00" + signature))


def with_null_parameters(ca: Issued) -> bytes:
    """DER of `ca` (self-signed) re-signed with an explicit NULL in ecdsa-with-SHA256's
    parameters (RFC 5758 says absent), as one production root has it."""
    algorithm = _der.tlv(0x30, _ECDSA_SHA256 + b"\x05\x00")
    tbs = ca.cert.tbs_certificate_bytes
    _, start, end = _der.read_tlv(tbs, 0, len(tbs))
    body = tbs[start:end].replace(_der.tlv(0x30, _ECDSA_SHA256), algorithm, 1)
    return _signed(_der.tlv(0x30, body), ca.key, algorithm)


def with_version_number(ca: Issued, number: int) -> bytes:
    """DER of `ca` (self-signed) re-signed with another X.509 version number in its TBS (3 is
    no version at all: cryptography raises x509.InvalidVersion, not a ValueError)."""
    tbs = ca.cert.tbs_certificate_bytes
    _, start, end = _der.read_tlv(tbs, 0, len(tbs))
    body = tbs[start:end]
    assert body.startswith(b"\xa0\x03\x02\x01\x02"), "a v3 certificate"
    body = b"\xa0\x03\x02\x01" + bytes([number]) + body[5:]
    return _signed(_der.tlv(0x30, body), ca.key, _der.tlv(0x30, _ECDSA_SHA256))


def make_v1_root(cn: str = "manverify lab v1 root", *, now=None, days: int = 3650) -> bytes:
    """DER of a self-signed version-1 certificate (no version field, no extensions)."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = _when(now) - _DAY
    name = _name(cn).public_bytes()

    def utc(t: _dt.datetime) -> bytes:
        return _der.tlv(0x17, t.strftime("%y%m%d%H%M%SZ").encode())

    algorithm = _der.tlv(0x30, _ECDSA_SHA256)
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    tbs = _der.tlv(0x30, _der.tlv(0x02, b"\x01") + algorithm + name
                   + _der.tlv(0x30, utc(start) + utc(start + days * _DAY)) + name + spki)
    return _signed(tbs, key, algorithm)
