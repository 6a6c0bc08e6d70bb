"""Trust: whether a certificate chain may sign PASSporTs, decided once when it enters the cache.

Path validation to the configured anchors (cryptography's RFC 5280 verifier), the STI end-entity
profile of profile.py, the operator's SPC allow-list and revocation by CRL (crl.py). The result is
a Credential with its loaded key, or a CredentialError saying why not.
"""
from __future__ import annotations

import hashlib
import logging
from typing import Any, Dict, List, NamedTuple, Tuple, Union

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .. import es256
from ..errors import ConfigError
from . import crl as _crl
from . import fetch as _fetch
from . import path as _path
from . import pem
from . import profile as _profile
from ._der import certificate_subject
from ._items import load_items
from ._warn import RateLimited
from .cache import short, when
from .model import MAX_CHAIN_BYTES, Credential, CredentialError
from .options import StoreOptions

MAX_CHAIN_CERTS = _path.MAX_DEPTH

log = logging.getLogger(__name__)

def certificate_ders(data: bytes) -> List[bytes]:
    """The DER of each certificate in PEM (one or many) or DER bytes; ValueError when there is
    none or the data cannot be read whole (pem.py: a cut or damaged file is never read in part)."""
    return pem.ders(data, "CERTIFICATE", "certificate")


def _parse(der: bytes) -> x509.Certificate:
    """ValueError for whatever the parser raises: x509.InvalidVersion is not a ValueError."""
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise
    except Exception as e:  # noqa: BLE001 - every parse failure is "unparsable", never "internal"
        raise ValueError(f"{type(e).__name__}: {e}") from None


def load_certificates(data: bytes) -> List[x509.Certificate]:
    """Certificates from PEM (one or many) or DER bytes; ValueError when there are none, the data
    cannot be read whole or one certificate cannot be parsed."""
    return [_parse(der) for der in certificate_ders(data)]


class SkippedAnchor(NamedTuple):
    """A trust anchor that could not be used: its subject (or the SHA-256 of its bytes) and why."""

    name: str
    reason: str


def _anchor_blobs(data: bytes) -> List[Union[x509.Certificate, SkippedAnchor]]:
    """Each certificate of a trust-anchor file parsed on its own, so one that the X.509 parser
    refuses (well-formed DER, but an unknown version, say) costs only itself. ValueError when
    the file cannot be read whole or holds no certificate: then the file is refused, never read
    as the part before the damage."""
    out: List[Union[x509.Certificate, SkippedAnchor]] = []
    for der in certificate_ders(data):
        try:
            out.append(_parse(der))
        except ValueError as e:
            name = certificate_subject(der) or f"SHA-256 {hashlib.sha256(der).hexdigest()}"
            out.append(SkippedAnchor(name, str(e)[:200]))
    return out


def load_anchors(trust_anchors: Any) -> Tuple[List[x509.Certificate], Tuple[SkippedAnchor, ...]]:
    """(usable anchors, skipped ones); ConfigError when a source cannot be read or none is usable."""
    items = load_items(trust_anchors, x509.Certificate, _anchor_blobs, "trust anchor", log)
    anchors = [c for c in items if isinstance(c, x509.Certificate)]
    skipped = tuple(s for s in items if isinstance(s, SkippedAnchor))
    for s in skipped:
        log.warning("trust anchor %s cannot be parsed and is skipped: %s", s.name, s.reason)
    if not anchors:
        if skipped:
            raise ConfigError(f"trust_anchors hold no readable certificate: {'; '.join(f'{s.name}: {s.reason}' for s in skipped)}")
        raise ConfigError("trust_anchors is empty: name at least one STI root certificate")
    return anchors, skipped


class Trust:
    def __init__(self, options: StoreOptions, fetcher: _fetch.Fetcher):
        self._warn = RateLimited(log)
        self.anchors, self.skipped_anchors = load_anchors(options.trust_anchors)
        self._anchors = _path.Anchors(self.anchors)
        self.profile = options.profile
        self.accept_missing_policy = options.accept_missing_policy
        self.spc_allowlist = options.spc_allowlist
        self.crl_policy = options.crl_policy
        self.crl_refresh = options.crl_refresh
        self.negative_ttl = options.negative_ttl
        self._fetcher = fetcher
        self._local_crls = _crl.LocalCRLs(options.crls)
        self._crl_signers = (load_items(options.crl_signers, x509.Certificate, load_certificates,
                                        "CRL signer", log) if options.crl_signers is not None else [])
        self._fetched_crls: Dict[str, Tuple[Any, float]] = {}  # url -> (CRL or error text, expires)
        self.crl_used: Dict[str, float] = {}  # CRL issuer -> thisUpdate of the CRL last applied
        self.counts = {"crl_fetches": 0, "crl_fail_open": 0}

    def evaluate(self, x5u: str, data: bytes, now: float):
        """(Credential or CredentialError, (valid from, valid until) of the chain or None, time by
        which revocation must be checked again or None)."""
        if len(data) > MAX_CHAIN_BYTES:
            return CredentialError(436, f"certificate chain at {x5u} is larger than {MAX_CHAIN_BYTES} bytes", "oversized"), None, None
        try:
            certs = load_certificates(data)
        except ValueError as e:
            return CredentialError(436, f"certificate at {x5u} cannot be parsed: {e}", "unparsable"), None, None
        if len(certs) > MAX_CHAIN_CERTS:
            return CredentialError(436, f"certificate chain at {x5u} has more than {MAX_CHAIN_CERTS} certificates", "too-many-certs"), None, None
        signer, intermediates = certs[0], certs[1:]
        problem = _profile.check_end_entity(signer, self.profile, self.accept_missing_policy)
        if problem:
            return CredentialError(437, f"signer certificate {x5u}: {problem}", "profile"), None, None
        # Validate the path at a time inside every certificate's validity, so that a chain
        # pre-loaded before its notBefore (MAN issues certificates a week ahead) becomes good
        # when its time comes; the call's `now` is compared with that window per call.
        start = max(c.not_valid_before_utc.timestamp() for c in certs)
        end = min(c.not_valid_after_utc.timestamp() for c in certs)
        if start > end:
            return CredentialError(437, f"certificate chain at {x5u} has no common validity period", "no-common-validity"), None, None
        try:
            path = self._validate_path(signer, intermediates, min(max(now, start), end))
        except _path.PathError as e:
            return CredentialError(437, f"signer certificate {x5u} is not trusted: {short(e)}", "untrusted"), None, None
        revoked, recheck = self._revocation(signer, path, now)
        if revoked:
            return revoked, None, None
        tn_auth = _profile.tn_auth_list(signer)
        spc = tn_auth.spcs[0].upper() if tn_auth and tn_auth.spcs else None
        if self.spc_allowlist is not None and spc not in self.spc_allowlist:
            return CredentialError(437, f"SPC {spc!r} of {x5u} is not on the operator allow-list", "spc-not-allowed"), None, None
        try:
            key = es256.key_from_public(signer.public_key())
        except es256.InvalidKey as e:
            return CredentialError(437, f"signer key of {x5u}: {e}", "bad-key"), None, None
        credential = Credential(
            x5u=x5u,
            key=key,
            not_before=signer.not_valid_before_utc.timestamp(),
            not_after=signer.not_valid_after_utc.timestamp(),
            spc=spc,
            tn_ranges=tn_auth.ranges if tn_auth else (),
            tn_ones=tn_auth.ones if tn_auth else (),
            subject=signer.subject.rfc4514_string(),
            fingerprint=hashlib.sha256(signer.public_bytes(Encoding.DER)).hexdigest(),
            policies=_profile.policy_oids(signer),
        )
        return credential, (start, end), recheck

    def _validate_path(self, cert: x509.Certificate, intermediates, at: float) -> List[x509.Certificate]:
        return _path.validate(cert, intermediates, self._anchors, when(at))

    # ---------------------------------------------------------------- revocation
    def _revocation(self, signer: x509.Certificate, path: List[x509.Certificate], now: float):
        """(CredentialError or None, time by which revocation must be checked again)."""
        recheck = now + self.crl_refresh
        local_crls = self._local_crls.current()  # files re-read if the operator's sync changed them
        points = _crl.distribution_points(signer)
        issuer_cert = path[1] if len(path) > 1 else None
        if not points:
            # No CRL named: a configured CRL from the issuer still applies.
            if issuer_cert is not None:
                local = _crl.pick(local_crls, issuer_cert.subject)
                if local is not None:
                    return self._apply(local, issuer_cert, signer, False, now, recheck)
            # Nothing to re-check, unless local CRL files may later bring one for this issuer.
            return None, (recheck if self._local_crls.configured else float("inf"))
        problems = []
        for dp in points:
            indirect = bool(dp.crl_issuers)
            names = dp.crl_issuers or ((issuer_cert.subject,) if issuer_cert is not None else ())
            for name in names:
                crl_signer = self._crl_signer(name, path, now)
                if isinstance(crl_signer, str):
                    problems.append(crl_signer)
                    continue
                crl_obj = _crl.pick(local_crls, name)
                local_problem = crl_obj is not None and _crl.check_crl(crl_obj, crl_signer, now, self.crl_refresh)
                if crl_obj is None or local_problem:
                    fetched = self._fetch_crl(dp.urls, name, now)
                    if isinstance(fetched, str):
                        problems.append(f"local copy: {local_problem}; {fetched}" if local_problem else fetched)
                        continue
                    crl_obj = fetched
                return self._apply(crl_obj, crl_signer, signer, indirect, now, recheck)
        return self._unknown(signer, "; ".join(problems) or "no usable CRL", now)

    def _apply(self, crl_obj, crl_signer, signer, indirect, now, recheck):
        problem = _crl.check_crl(crl_obj, crl_signer, now, self.crl_refresh)
        if problem:
            return self._unknown(signer, problem, now)
        self.crl_used[crl_obj.issuer.rfc4514_string()] = crl_obj.last_update_utc.timestamp()
        if _crl.is_revoked(crl_obj, signer, indirect):
            return CredentialError(437, f"signer certificate serial {signer.serial_number:x} is revoked", "revoked"), None
        if crl_obj.next_update_utc is not None:
            recheck = min(recheck, crl_obj.next_update_utc.timestamp())
        return None, recheck

    def _unknown(self, signer: x509.Certificate, why: str, now: float):
        """Revocation status cannot be known: crl_policy decides, and the log says so."""
        issuer = signer.issuer.rfc4514_string()
        if self.crl_policy == "fail-open":
            self.counts["crl_fail_open"] += 1
            self._warn.warning(("open", issuer), "revocation status of certificates from %s unknown (%s); accepted, "
                                            "crl_policy is fail-open", issuer, why)
            return None, now + self.negative_ttl
        self._warn.warning(("closed", issuer), "revocation status of certificates from %s unknown (%s); refused, "
                                          "crl_policy is fail-closed", issuer, why)
        return CredentialError(437, f"revocation status unknown ({why}); crl_policy is fail-closed", "crl-unavailable"), None

    def _crl_signer(self, name: x509.Name, path: List[x509.Certificate], now: float) -> Union[x509.Certificate, str]:
        """The certificate that may sign the CRL of `name`, or why there is none."""
        found = _crl.find_issuer(name, path)
        if found is not None:
            return found
        found = _crl.find_issuer(name, self._crl_signers)
        if found is None:
            return f"no certificate for CRL issuer {name.rfc4514_string()} (crl_signers=)"
        # An indirect CRL signer (MAN's PA certificate) must itself chain to the anchors.
        try:
            self._validate_path(found, [c for c in path[1:] if c.subject != name], now)
        except _path.PathError as e:
            return f"CRL issuer certificate {name.rfc4514_string()} is not trusted at this time: {short(e)}"
        return found

    def _fetch_crl(self, urls, issuer_name, now: float):
        errors = []
        for url in urls:
            cached = self._fetched_crls.get(url)
            if cached is not None and now < cached[1]:
                if isinstance(cached[0], str):
                    errors.append(cached[0])
                    continue
                return cached[0]
            if not self._fetcher.enabled:
                errors.append(f"CRL {url} is not in the local copy and fetching is off")
                continue
            self.counts["crl_fetches"] += 1
            try:
                got = self._fetcher.crl(url, now)
                crl_obj = _crl.pick(_crl.load_crls(got.body), issuer_name)
                if crl_obj is None:
                    raise _fetch.FetchError("CRL is not from the expected issuer")
                # Reuse it until the next refresh, never past its own nextUpdate: a stale copy
                # kept here would fail every call closed while a fresh CRL is published.
                until = now + self.crl_refresh
                if crl_obj.next_update_utc is not None:
                    until = min(until, crl_obj.next_update_utc.timestamp())
                self._fetched_crls[url] = (crl_obj, until)
                return crl_obj
            except (_fetch.FetchError, ValueError) as e:
                text = f"CRL {url}: {e}"
                self._fetched_crls[url] = (text, now + self.negative_ttl)
                errors.append(text)
        return "; ".join(errors) or f"no CRL URL for {issuer_name.rfc4514_string()}"
