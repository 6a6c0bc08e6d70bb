"""Revocation by CRL (no OCSP in SHAKEN/MAN), direct or indirect.

MAN publishes an *indirect* CRL: signed by the "PA" certificate that the operator certificate's
CRL distribution point names in cRLIssuer, not by the CA that issued it. Entries of an indirect
CRL name their certificate's issuer (the CertificateIssuer entry extension, carried forward to
the following entries, RFC 5280 §5.3.3), so a serial only matches under the right issuer.
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from ..errors import ConfigError
from . import pem
from ._items import load_items, note_dropped
from ._warn import RateLimited

log = logging.getLogger(__name__)


class DistributionPoint(NamedTuple):
    urls: Tuple[str, ...]
    crl_issuers: Tuple[x509.Name, ...]  # non-empty for an indirect CRL


def load_crls(data: bytes) -> List[x509.CertificateRevocationList]:
    """CRLs from PEM (one or several) or DER bytes; ValueError when there is none or the data
    cannot be read whole (pem.py: a torn file is refused, never read as the CRLs before the cut)."""
    return [x509.load_der_x509_crl(der) for der in pem.ders(data, "X509 CRL", "CRL")]


def load_configured(crls) -> List[x509.CertificateRevocationList]:
    """The `crls=` option: paths, PEM/DER bytes or CRL objects; ConfigError when unreadable."""
    if crls is None:
        return []
    return load_items(crls, x509.CertificateRevocationList, load_crls, "CRL")


CRL_SUFFIXES = (".crl", ".pem", ".der")


class LocalCRLs:
    """The `crls=` option, kept current: files (and directories of .crl/.pem/.der files) are
    read again when they change, so the operator's daily sync of the MAN CRL is picked up
    without a restart. A file caught half-written or unreadable keeps its previous CRLs.

    current() is called when revocation is (re)evaluated, never on the per-call path.
    """

    def __init__(self, crls):
        self._fixed: List[x509.CertificateRevocationList] = []
        self._paths: List[Path] = []
        self._files: Dict[Path, Tuple[Tuple[int, int], List[x509.CertificateRevocationList]]] = {}
        self.errors: Dict[str, str] = {}
        self._lock = threading.Lock()
        self._warn = RateLimited(log)
        if crls is None:
            return
        items = [crls] if isinstance(crls, (str, bytes, os.PathLike, x509.CertificateRevocationList)) else crls
        try:
            items = list(items)
        except TypeError:
            raise ConfigError("crls must be given as a list of paths, PEM/DER bytes or CRL objects") from None
        for item in items:
            if isinstance(item, (str, os.PathLike)):
                path = Path(item)
                if path.is_dir():
                    self._paths.append(path)
                    continue
                self._fixed_check(path)
                self._paths.append(path)
            else:
                self._fixed.extend(load_configured([item]))
        self.current()
        if self.errors:
            where, why = next(iter(self.errors.items()))
            raise ConfigError(f"cannot read CRL {where}: {why}")

    @staticmethod
    def _fixed_check(path: Path) -> None:
        try:
            path.stat()
        except OSError as e:
            raise ConfigError(f"cannot read CRL {path}: {e.strerror}") from None

    def _files_now(self) -> List[Path]:
        out = []
        for path in self._paths:
            if path.is_dir():
                try:
                    out.extend(sorted(p for p in path.iterdir()
                                      if p.suffix.lower() in CRL_SUFFIXES and not p.name.startswith(".")))
                except OSError as e:
                    self.errors[str(path)] = e.strerror or str(e)
            else:
                out.append(path)
        return out

    @property
    def configured(self) -> bool:
        return bool(self._fixed or self._paths)

    def current(self) -> List[x509.CertificateRevocationList]:
        with self._lock:  # calls and background refreshes may re-read at the same time
            return self._current()

    def _current(self) -> List[x509.CertificateRevocationList]:
        out = list(self._fixed)
        seen = set()
        for path in self._files_now():
            seen.add(path)
            try:
                st = path.stat()
                stamp = (st.st_mtime_ns, st.st_size)
                known = self._files.get(path)
                if known is None or known[0] != stamp:
                    crls = load_crls(path.read_bytes())
                    note_dropped(path, crls, "CRL", log)
                    self._files[path] = (stamp, crls)
                    self.errors.pop(str(path), None)
            except (OSError, ValueError) as e:
                self.errors[str(path)] = getattr(e, "strerror", None) or str(e)
                if path in self._files:
                    self._warn.warning(str(path), "cannot read CRL file %s again (%s); its previous CRLs stay in use",
                                       path, self.errors[str(path)])
            if path in self._files:
                out.extend(self._files[path][1])
        for gone in set(self._files) - seen:
            del self._files[gone]
        return out


def distribution_points(cert: x509.Certificate) -> List[DistributionPoint]:
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS)
    except x509.ExtensionNotFound:
        return []
    out = []
    for dp in ext.value:
        urls = tuple(n.value for n in (dp.full_name or []) if isinstance(n, x509.UniformResourceIdentifier))
        issuers = tuple(n.value for n in (dp.crl_issuer or []) if isinstance(n, x509.DirectoryName))
        out.append(DistributionPoint(urls, issuers))
    return out


def is_revoked(crl: x509.CertificateRevocationList, cert: x509.Certificate, indirect: bool) -> bool:
    """Whether `cert` (by issuer and serial, compared by value) is listed in `crl`."""
    serial = cert.serial_number
    if not indirect:
        return crl.get_revoked_certificate_by_serial_number(serial) is not None
    current_issuer = crl.issuer
    for entry in crl:
        try:
            ext = entry.extensions.get_extension_for_class(x509.CertificateIssuer)
            names = [n.value for n in ext.value if isinstance(n, x509.DirectoryName)]
            if names:
                current_issuer = names[0]
        except x509.ExtensionNotFound:
            pass
        if entry.serial_number == serial and current_issuer == cert.issuer:
            return True
    return False


def check_crl(
    crl: x509.CertificateRevocationList,
    signer_cert: x509.Certificate,
    now: float,
    max_age: float,
) -> Optional[str]:
    """None when `crl` is correctly signed by `signer_cert` and fresh at `now`, else why not."""
    if crl.issuer != signer_cert.subject:
        return "CRL issuer does not match its signing certificate"
    try:
        if not crl.is_signature_valid(signer_cert.public_key()):
            return f"CRL from {crl.issuer.rfc4514_string()} has a bad signature"
    except (TypeError, ValueError) as e:
        return f"CRL signature cannot be checked: {e}"
    try:
        ku = signer_cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not ku.crl_sign:
            return f"{signer_cert.subject.rfc4514_string()} may not sign CRLs (KeyUsage lacks cRLSign)"
    except x509.ExtensionNotFound:
        pass
    this = crl.last_update_utc.timestamp()
    nxt = crl.next_update_utc.timestamp() if crl.next_update_utc else None
    if this > now + 300:
        return "CRL thisUpdate is in the future"
    if nxt is not None and now > nxt:
        return "CRL is stale (past its nextUpdate)"
    if nxt is None and now - this > max_age:
        return "CRL is older than the configured refresh interval"
    return None


def find_issuer(name: x509.Name, candidates: Iterable[x509.Certificate]) -> Optional[x509.Certificate]:
    for c in candidates:
        if c.subject == name:
            return c
    return None


def pick(crls: Sequence[x509.CertificateRevocationList], issuer: x509.Name):
    """The newest CRL issued by `issuer`, or None."""
    mine = [c for c in crls if c.issuer == issuer]
    return max(mine, key=lambda c: c.last_update_utc) if mine else None
