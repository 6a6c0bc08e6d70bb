"""CertStore: where a signer's certificate is obtained, trusted and cached.

Trust is decided once, when a certificate chain enters the cache: path validation to the
configured anchors (cryptography's RFC 5280 verifier), then the STI end-entity profile of
profile.py. The per-call path (`credential()` for a known x5u) is a dict lookup and two float
comparisons: no X.509 parsing, no I/O.

MAN mandates a local copy of every operator certificate ("without external requests"), so the
store is first of all pre-loadable: `certificates=` a directory synchronised from the MAN
platform's export, or a mapping {x5u_url: pem_chain}. Directory lookup, in order:
  1. a manifest `x5u.json` in the directory: {"https://…/op.pem": "op.pem", …}
  2. the file named like the URL's last path segment (https://certs.example.fr/op1001.pem → op1001.pem)
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit

from cachetools import LRUCache
from cryptography import x509
from cryptography.x509 import verification

from .. import es256
from ..errors import ConfigError
from . import profile as _profile
from .model import Credential, CredentialError

PROFILES = ("man", "atis", "rfc")
MANIFEST = "x5u.json"
MAX_CHAIN_BYTES = 64 * 1024
MAX_CHAIN_CERTS = 8


def load_certificates(data: bytes) -> List[x509.Certificate]:
    """Certificates from PEM (one or many) or DER bytes; ValueError when there are none."""
    if b"-----BEGIN" in data:
        certs = x509.load_pem_x509_certificates(data)
    else:
        certs = [x509.load_der_x509_certificate(data)]
    if not certs:
        raise ValueError("no certificate found")
    return certs


def _anchor_list(trust_anchors: Any) -> List[x509.Certificate]:
    if isinstance(trust_anchors, (str, bytes, os.PathLike, x509.Certificate)):
        trust_anchors = [trust_anchors]
    if not isinstance(trust_anchors, Iterable):
        raise ConfigError("trust_anchors must be a list of paths, PEM/DER bytes or certificates")
    out: List[x509.Certificate] = []
    for item in trust_anchors:
        if isinstance(item, x509.Certificate):
            out.append(item)
            continue
        if isinstance(item, (str, os.PathLike)):
            path = Path(item)
            try:
                data = path.read_bytes()
            except OSError as e:
                raise ConfigError(f"cannot read trust anchor {path}: {e.strerror}") from None
            where = str(path)
        elif isinstance(item, bytes):
            data, where = item, "trust anchor bytes"
        else:
            raise ConfigError(f"trust anchor must be a path, PEM/DER bytes or a certificate, not {type(item).__name__}")
        try:
            out.extend(load_certificates(data))
        except ValueError as e:
            raise ConfigError(f"{where} holds no readable certificate: {e}") from None
    if not out:
        raise ConfigError("trust_anchors is empty: name at least one STI root certificate")
    return out


def _when(epoch: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc)


class _Entry:
    """A cached outcome and the window in which it holds."""

    __slots__ = ("outcome", "valid_from", "valid_until")

    def __init__(self, outcome, valid_from: float, valid_until: float):
        self.outcome = outcome
        self.valid_from = valid_from
        self.valid_until = valid_until


class CertStore:
    """Signer certificates by x5u URL, validated against the trust anchors and the profile.

    Options beyond API.md's:
      accept_missing_policy  MAN: accept certificates issued before the CP (no policy extension)
      spc_allowlist          only these Service Provider Codes may sign (None: any)
      max_entries            bound of the in-memory cache
    """

    def __init__(
        self,
        trust_anchors: Any,
        certificates: Union[None, str, os.PathLike, Mapping[str, Union[bytes, str]]] = None,
        crls: Any = None,
        cache_dir: Optional[Union[str, os.PathLike]] = None,
        allow_http: bool = False,
        profile: str = "man",
        *,
        accept_missing_policy: bool = True,
        spc_allowlist: Optional[Iterable[str]] = None,
        max_entries: int = 10000,
    ):
        if profile not in PROFILES:
            raise ConfigError(f"profile must be one of {', '.join(PROFILES)}, not {profile!r}")
        if not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigError("max_entries must be a positive int")
        self.profile = profile
        self.allow_http = bool(allow_http)
        self.accept_missing_policy = bool(accept_missing_policy)
        self.spc_allowlist = frozenset(spc_allowlist) if spc_allowlist is not None else None
        self._anchors = _anchor_list(trust_anchors)
        self._x509_store = verification.Store(self._anchors)
        self._local: Dict[str, bytes] = {}
        self._dir: Optional[Path] = None
        self._manifest: Dict[str, str] = {}
        self._set_local(certificates)
        self._cache: LRUCache = LRUCache(maxsize=max_entries)
        self._lock = threading.Lock()
        self._stats: Dict[str, int] = {"hits": 0, "misses": 0, "loads": 0, "rejections": 0}

    # ---------------------------------------------------------------- configuration
    def _set_local(self, certificates) -> None:
        if certificates is None:
            return
        if isinstance(certificates, Mapping):
            for url, chain in certificates.items():
                if not isinstance(url, str):
                    raise ConfigError("certificates mapping keys must be x5u URL strings")
                if isinstance(chain, str):
                    chain = chain.encode()
                if not isinstance(chain, bytes):
                    raise ConfigError(f"certificates[{url!r}] must be PEM/DER bytes")
                self._local[url] = chain
            return
        if isinstance(certificates, (str, os.PathLike)):
            path = Path(certificates)
            if not path.is_dir():
                raise ConfigError(f"certificates directory {path} does not exist")
            self._dir = path
            manifest = path / MANIFEST
            if manifest.exists():
                try:
                    data = json.loads(manifest.read_text(encoding="utf-8"))
                except (OSError, ValueError) as e:
                    raise ConfigError(f"cannot read {manifest}: {e}") from None
                if not isinstance(data, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in data.items()
                ):
                    raise ConfigError(f"{manifest} must map x5u URLs to file names")
                self._manifest = data
            return
        raise ConfigError("certificates must be a directory path or a mapping {x5u_url: pem_chain}")

    # ---------------------------------------------------------------- the per-call path
    def credential(self, x5u: str, now: float) -> Union[Credential, CredentialError]:
        """The trusted credential for x5u at time `now`; never raises for call data."""
        entry = self._cache.get(x5u)
        if entry is None:
            self._stats["misses"] += 1
            entry = self._load(x5u, now)
        else:
            self._stats["hits"] += 1
        outcome = entry.outcome
        if isinstance(outcome, CredentialError):
            return outcome
        if now < entry.valid_from:
            return CredentialError(437, f"certificate chain for {x5u} is not valid before {_when(entry.valid_from):%Y-%m-%d %H:%M:%SZ}")
        if now > entry.valid_until:
            return CredentialError(437, f"certificate chain for {x5u} expired at {_when(entry.valid_until):%Y-%m-%d %H:%M:%SZ}")
        return outcome

    def warm(self, urls: Iterable[str], now: Optional[float] = None) -> Dict[str, Union[Credential, CredentialError]]:
        """Load and validate these x5u URLs now (e.g. the whole MAN local copy at start-up)."""
        import time

        t = time.time() if now is None else now
        return {url: self.credential(url, t) for url in urls}

    def stats(self) -> Dict[str, int]:
        """Counters a proxy can export."""
        out = dict(self._stats)
        out["entries"] = len(self._cache)
        return out

    def authorizes(self, credential: Credential, tn: str) -> bool:
        """Whether a credential may sign for canonical number `tn`.

        SPC-only certificates (the SHAKEN/MAN case) authorise the operator, not numbers: True.
        A TN-bearing certificate (ranges or single numbers) must list the number.
        """
        if not credential.tn_ranges and not credential.tn_ones:
            return True
        from .tnauthlist import TNAuthList

        return TNAuthList((), credential.tn_ranges, credential.tn_ones).covers(tn)

    # ---------------------------------------------------------------- loading and trust
    def _load(self, x5u: str, now: float) -> _Entry:
        with self._lock:
            entry = self._cache.get(x5u)
            if entry is not None:
                return entry
            entry = self._evaluate(x5u, self._obtain(x5u), now)
            self._cache[x5u] = entry
            return entry

    def _obtain(self, x5u: str) -> Union[bytes, CredentialError]:
        """The chain bytes for x5u from the local copy; CredentialError(436) when absent."""
        data = self._local.get(x5u)
        if data is not None:
            return data
        if self._dir is not None:
            name = self._manifest.get(x5u) or Path(urlsplit(x5u).path).name
            if name and "/" not in name and "\\" not in name and name not in (".", ".."):
                path = self._dir / name
                try:
                    with open(path, "rb") as f:
                        data = f.read(MAX_CHAIN_BYTES + 1)
                except OSError:
                    data = None
                if data is not None:
                    if len(data) > MAX_CHAIN_BYTES:
                        return CredentialError(436, f"local copy {path} is larger than {MAX_CHAIN_BYTES} bytes")
                    return data
        return CredentialError(436, f"no certificate for x5u {x5u} in the local copy")

    def _evaluate(self, x5u: str, data: Union[bytes, CredentialError], now: float) -> _Entry:
        self._stats["loads"] += 1
        outcome, window = self._trust(x5u, data, now)
        if isinstance(outcome, CredentialError):
            self._stats["rejections"] += 1
            return _Entry(outcome, float("-inf"), float("inf"))
        return _Entry(outcome, *window)

    def _trust(self, x5u: str, data, now: float):
        if isinstance(data, CredentialError):
            return data, None
        if len(data) > MAX_CHAIN_BYTES:
            return CredentialError(436, f"certificate chain at {x5u} is larger than {MAX_CHAIN_BYTES} bytes"), None
        try:
            certs = load_certificates(data)
        except ValueError as e:
            return CredentialError(436, f"certificate at {x5u} cannot be parsed: {e}"), None
        if len(certs) > MAX_CHAIN_CERTS:
            return CredentialError(436, f"certificate chain at {x5u} has more than {MAX_CHAIN_CERTS} certificates"), None
        signer, intermediates = certs[0], certs[1:]
        problem = _profile.check_end_entity(signer, self.profile, self.accept_missing_policy)
        if problem:
            return CredentialError(437, f"signer certificate {x5u}: {problem}"), None
        # Validate the path at a time inside every certificate's validity, so that a chain
        # pre-loaded before its notBefore (MAN issues certificates a week ahead) becomes good
        # when its time comes; the call's `now` is compared with that window per call.
        start = max(c.not_valid_before_utc.timestamp() for c in certs)
        end = min(c.not_valid_after_utc.timestamp() for c in certs)
        if start > end:
            return CredentialError(437, f"certificate chain at {x5u} has no common validity period"), None
        at = min(max(now, start), end)
        try:
            verifier = (
                verification.PolicyBuilder()
                .store(self._x509_store)
                .time(_when(at))
                .max_chain_depth(MAX_CHAIN_CERTS)
                .extension_policies(
                    ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
                    ee_policy=verification.ExtensionPolicy.permit_all(),
                )
                .build_client_verifier()
            )
            verifier.verify(signer, intermediates)
        except verification.VerificationError as e:
            return CredentialError(437, f"signer certificate {x5u} is not trusted: {_short(e)}"), None
        tn_auth = _profile.tn_auth_list(signer)
        spc = tn_auth.spcs[0] if tn_auth and tn_auth.spcs else None
        if self.spc_allowlist is not None and spc not in self.spc_allowlist:
            return CredentialError(437, f"SPC {spc!r} of {x5u} is not on the operator allow-list"), None
        try:
            key = es256.key_from_public(signer.public_key())
        except es256.InvalidKey as e:
            return CredentialError(437, f"signer key of {x5u}: {e}"), None
        credential = Credential(
            x5u=x5u,
            key=key,
            not_before=signer.not_valid_before_utc.timestamp(),
            not_after=signer.not_valid_after_utc.timestamp(),
            spc=spc,
            tn_ranges=tn_auth.ranges if tn_auth else (),
            tn_ones=tn_auth.ones if tn_auth else (),
            subject=signer.subject.rfc4514_string(),
            fingerprint=hashlib.sha256(signer.public_bytes(_DER)).hexdigest(),
            policies=_profile.policy_oids(signer),
        )
        return credential, (start, end)


def _short(e: Exception) -> str:
    text = str(e)
    return text.split(" (encountered processing", 1)[0][:300]


from cryptography.hazmat.primitives.serialization import Encoding as _Encoding  # noqa: E402

_DER = _Encoding.DER
