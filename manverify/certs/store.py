"""CertStore: where a signer's certificate is obtained, trusted and cached.

Trust is decided once, when a certificate chain enters the cache: path validation to the
configured anchors (cryptography's RFC 5280 verifier), then the STI end-entity profile of
profile.py. The per-call path (`credential()` for a known x5u) is a dict lookup and two float
comparisons: no X.509 parsing, no I/O.

MAN mandates a local copy of every operator certificate ("without external requests"), so the
store is first of all pre-loadable: `certificates=` a directory synchronised from the MAN
platform's export, or a mapping {x5u_url: pem_chain}. Files are read again every min_ttl (24 h),
in the background, so a re-synchronised directory is picked up without a restart; CRL files
given in crls= (files or directories) are read again whenever they change. Directory lookup,
in order:
  1. a manifest `x5u.json` in the directory: {"https://…/op.pem": "op.pem", …}
  2. the file named like the URL's last path segment (https://certs.example.fr/op1001.pem → op1001.pem)
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import os
import ssl
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit

from cachetools import LRUCache

try:
    import fcntl as _fcntl
except ImportError:  # not POSIX: no cross-process single flight, each worker fetches once
    _fcntl = None
from cryptography import x509
from cryptography.x509 import verification

from .. import es256
from ..errors import ConfigError
from . import crl as _crl
from . import fetch as _fetch
from . import profile as _profile
from ._items import load_items
from .model import Credential, CredentialError

PROFILES = ("man", "atis", "rfc")
MANIFEST = "x5u.json"
MAX_CHAIN_BYTES = 64 * 1024
MAX_CHAIN_CERTS = 8
MAX_X5U_CHARS = 2048
DAY = 86400.0
CRL_POLICIES = ("fail-closed", "fail-open")


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
    out = load_items(trust_anchors, x509.Certificate, load_certificates, "trust anchor", "certificate")
    if not out:
        raise ConfigError("trust_anchors is empty: name at least one STI root certificate")
    return out


def _when(epoch: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc)


class _Entry:
    """A cached outcome: the window in which the chain is valid, and when to look again."""

    __slots__ = ("outcome", "valid_from", "valid_until", "expires", "refresh")

    def __init__(self, outcome, valid_from: float, valid_until: float, expires: float, refresh: float):
        self.outcome = outcome
        self.valid_from = valid_from
        self.valid_until = valid_until
        self.expires = expires  # re-obtain and re-evaluate after this
        self.refresh = refresh  # start a background refresh after this


class CertStore:
    """Signer certificates by x5u URL, validated against the trust anchors and the profile.

    Options beyond API.md's:
      fetch                  fetch x5u over the network when it is not in the local copy (True)
      allow_loopback         lab/test: let an https x5u resolve to 127.0.0.1/::1 (False)
      tls_ca                 lab/test: CA (path or PEM) for the x5u server's TLS; default: system roots
      connect_timeout, total_timeout, max_bytes, https_ports
                             fetch budget: 2 s to resolve and to connect, 4 s in all for one miss
                             (DNS, connect, TLS, x5u and CRL fetches share it), 64 KiB, ports 443/8443
      min_ttl                cache a fetched chain at least this long (24 h), never past notAfter;
                             certificates= directory files are re-read after this long
      negative_ttl           remember a failure (and an expired chain) this long (30 s), so a dead
                             or bad x5u is neither fetched nor parsed on every call
      refresh_ahead          fraction of an entry's life after which calls are still answered from
                             cache while a background thread refreshes it (0.9; 1 = off)
      cache_dir_max_files    bound of the on-disk cache (10000 files). cache_dir holds only chains
                             that passed every check, written by atomic rename; workers sharing it
                             fetch a URL once between them (flock on <hash>.lock, POSIX)
      crl_policy             "fail-closed" (default for man) or "fail-open" (default otherwise) when
                             a certificate names a CRL that cannot be obtained or is stale/badly signed
      crl_refresh            re-check revocation at least this often (24 h)
      crl_signers            extra certificates that may sign CRLs (MAN: the PA certificate), if the
                             CRL issuer is not in the chain or the anchors
      accept_missing_policy  MAN: accept certificates issued before the CP (no policy extension)
      spc_allowlist          only these Service Provider Codes may sign (None: any)
      max_entries            bound of the in-memory cache (credentials; failures have their own
                             cache of the same size, so junk x5u values cannot evict credentials)
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
        fetch: bool = True,
        allow_loopback: bool = False,
        tls_ca: Any = None,
        connect_timeout: float = 2.0,
        total_timeout: float = 4.0,
        max_bytes: int = 64 * 1024,
        https_ports: Sequence[int] = _fetch.DEFAULT_PORTS,
        min_ttl: float = DAY,
        negative_ttl: float = 30.0,
        refresh_ahead: float = 0.9,
        cache_dir_max_files: int = 10000,
        crl_policy: Optional[str] = None,
        crl_refresh: float = DAY,
        crl_signers: Any = None,
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
        for name, value in (("connect_timeout", connect_timeout), ("total_timeout", total_timeout),
                            ("min_ttl", min_ttl), ("negative_ttl", negative_ttl), ("crl_refresh", crl_refresh)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"{name} must be a positive number of seconds, not {value!r}")
        if crl_policy is None:
            crl_policy = "fail-closed" if profile == "man" else "fail-open"
        if crl_policy not in CRL_POLICIES:
            raise ConfigError(f"crl_policy must be one of {', '.join(CRL_POLICIES)}, not {crl_policy!r}")
        self.fetch_enabled = bool(fetch)
        self.allow_loopback = bool(allow_loopback)
        self.limits = _fetch.Limits(float(connect_timeout), float(total_timeout), int(max_bytes),
                                    tuple(https_ports))
        self._tls = _tls_context(tls_ca)
        self.min_ttl = float(min_ttl)
        self.negative_ttl = float(negative_ttl)
        if isinstance(refresh_ahead, bool) or not isinstance(refresh_ahead, (int, float)) or not 0 < refresh_ahead <= 1:
            raise ConfigError("refresh_ahead must be a fraction in (0, 1]; 1 turns background refresh off")
        self.refresh_ahead = float(refresh_ahead)
        self.crl_policy = crl_policy
        self.crl_refresh = float(crl_refresh)
        self._local_crls = _crl.LocalCRLs(crls)
        self._crl_signers = _anchor_list(crl_signers) if crl_signers is not None else []
        self._fetched_crls: Dict[str, Tuple[Any, float]] = {}  # url -> (CRL or error text, expires)
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        if self._cache_dir is not None:
            try:
                self._cache_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ConfigError(f"cannot create cache_dir {self._cache_dir}: {e.strerror}") from None
        self.cache_dir_max_files = int(cache_dir_max_files)
        self._cache: LRUCache = LRUCache(maxsize=max_entries)  # x5u -> _Entry holding a Credential
        self._failed: LRUCache = LRUCache(maxsize=max_entries)  # x5u -> _Entry holding a CredentialError
        self._lock = threading.Lock()
        self._inflight: Dict[str, threading.Event] = {}
        self._refreshing: set = set()
        self._budget = threading.local()  # .deadline of the evaluation running in this thread
        self._stats: Dict[str, Any] = {
            "hits": 0, "misses": 0, "negative_hits": 0, "loads": 0, "fetches": 0, "fetch_errors": 0,
            "disk_hits": 0, "refreshes": 0, "crl_fetches": 0, "crl_fail_open": 0, "rejections": 0,
        }
        self._rejections: Dict[str, int] = {}
        self._crl_used: Dict[str, float] = {}  # CRL issuer -> thisUpdate of the CRL last applied

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
        if type(x5u) is not str:  # an unhashable value would make the cache lookup raise
            return CredentialError(436, f"x5u must be a URL string, not {type(x5u).__name__}", "fetch-url")
        with self._lock:  # cachetools caches are not thread-safe; the lock is uncontended in practice
            entry = self._cache.get(x5u) or self._failed.get(x5u)
            if entry is not None and now < entry.expires:
                self._stats["hits"] += 1
                if isinstance(entry.outcome, CredentialError):
                    self._stats["negative_hits"] += 1
            else:
                self._stats["misses"] += 1
        if entry is None or now >= entry.expires:
            if len(x5u) > MAX_X5U_CHARS:  # not cached: junk this long must not fill the failure cache
                return CredentialError(436, f"x5u is longer than {MAX_X5U_CHARS} characters", "fetch-url")
            entry = self._load(x5u, now)
        elif now >= entry.refresh:
            self._refresh_in_background(x5u, now)
        outcome = entry.outcome
        if isinstance(outcome, CredentialError):
            return outcome
        if now < entry.valid_from:
            return CredentialError(437, f"certificate chain for {x5u} is not valid before {_when(entry.valid_from):%Y-%m-%d %H:%M:%SZ}", "not-yet-valid")
        if now > entry.valid_until:
            return CredentialError(437, f"certificate chain for {x5u} expired at {_when(entry.valid_until):%Y-%m-%d %H:%M:%SZ}", "expired")
        return outcome

    def warm(self, urls: Optional[Iterable[str]] = None, now: Optional[float] = None) -> Dict[str, Union[Credential, CredentialError]]:
        """Load and validate these x5u URLs now (e.g. the whole MAN local copy at start-up).

        Without urls: every URL the local copy names (the certificates= mapping's keys and the
        directory manifest's). A directory without a manifest names no URL: pass them.
        """
        if urls is None:
            urls = list(self._local) + [u for u in self._manifest if u not in self._local]
        t = time.time() if now is None else now
        return {url: self.credential(url, t) for url in urls}

    def stats(self) -> Dict[str, Any]:
        """Counters a proxy can export: cache hits/misses, fetches, rejections by reason, CRL age."""
        out = dict(self._stats)
        out["entries"] = len(self._cache)
        out["failed_entries"] = len(self._failed)
        out["rejections_by_reason"] = dict(self._rejections)
        # Age of the CRLs in use (now - thisUpdate), per issuer and the oldest: alert on these.
        wall = time.time()
        out["crl_ages"] = {name: max(0.0, wall - t) for name, t in self._crl_used.items()}
        out["crl_age"] = max(out["crl_ages"].values()) if out["crl_ages"] else None
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
        # Single flight: concurrent misses on one URL wait for the one evaluation under way.
        with self._lock:
            event = self._inflight.get(x5u)
            leader = event is None
            if leader:
                event = self._inflight[x5u] = threading.Event()
        if not leader:
            event.wait(self.limits.total_timeout + 1.0)
            with self._lock:
                entry = self._cache.get(x5u) or self._failed.get(x5u)
            if entry is not None and now < entry.expires:
                return entry
            return _Entry(CredentialError(436, f"certificate for {x5u} is still being fetched", "busy"),
                          float("-inf"), float("inf"), now, now)
        try:
            try:
                entry = self._evaluate(x5u, now)
            except Exception as e:  # a library surprise on hostile input must not reach the call
                self._reject("internal")
                entry = _Entry(CredentialError(436, f"certificate at {x5u} could not be evaluated: "
                                                    f"{type(e).__name__}: {_short(e)}", "internal"),
                               float("-inf"), float("inf"), now + self.negative_ttl, now + self.negative_ttl)
            self._store(x5u, entry)
            return entry
        finally:
            with self._lock:
                del self._inflight[x5u]
            event.set()

    def _store(self, x5u: str, entry: _Entry) -> None:
        # Failures live in their own bounded cache: a stream of junk x5u values (chosen by
        # callers) can only evict other failures, never the credentials of real signers.
        with self._lock:
            if isinstance(entry.outcome, CredentialError):
                self._failed[x5u] = entry
                self._cache.pop(x5u, None)
            else:
                self._cache[x5u] = entry
                self._failed.pop(x5u, None)

    def _refresh_in_background(self, x5u: str, now: float) -> None:
        with self._lock:
            if x5u in self._refreshing or x5u in self._inflight:
                return
            self._refreshing.add(x5u)

        def run():
            try:
                entry = self._evaluate(x5u, now, refresh=True)
                # A transient failure keeps the entry in use until it expires; a revocation
                # found on the way replaces it at once.
                if not isinstance(entry.outcome, CredentialError) or entry.outcome.reason == "revoked":
                    self._store(x5u, entry)
                self._stats["refreshes"] += 1
            except Exception:  # the entry simply expires and is loaded again by a call
                pass
            finally:
                with self._lock:
                    self._refreshing.discard(x5u)

        try:
            threading.Thread(target=run, name="manverify-refresh", daemon=True).start()
        except RuntimeError:  # no thread available: the entry is reloaded when it expires
            with self._lock:
                self._refreshing.discard(x5u)

    def _obtain(self, x5u: str, now: float, refresh: bool = False) -> Tuple[Union[bytes, CredentialError], float, bool]:
        """(chain bytes or CredentialError(436), seconds they may be reused, whether they were
        fetched just now and may go to the disk cache once trusted)."""
        data = self._local.get(x5u)
        if data is not None:
            return data, float("inf"), False
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
                        return CredentialError(436, f"local copy {path} is larger than {MAX_CHAIN_BYTES} bytes", "oversized"), self.negative_ttl, False
                    # Read again after min_ttl (in the background, see refresh_ahead): the
                    # directory is the operator's daily sync of the MAN export.
                    return data, self.min_ttl, False
        if not refresh:
            cached = self._disk_read(x5u, now)
            if cached is not None:
                self._stats["disk_hits"] += 1
                return cached[0], cached[1], False
        if not self.fetch_enabled:
            return CredentialError(436, f"no certificate for x5u {x5u} in the local copy (fetching is off)", "not-in-local-copy"), self.negative_ttl, False
        waited = self._disk_lock(x5u)
        if waited is None:
            return CredentialError(436, f"x5u {x5u} is being fetched by another worker and the time budget ran out",
                                   "fetch-timeout"), self.negative_ttl, False
        if waited or refresh:
            # Another worker may have fetched it meanwhile. A background refresh takes the disk
            # copy only if it was written recently (half of min_ttl left): then N workers
            # refreshing the same URL make one request, not N.
            cached = self._disk_read(x5u, now)
            if cached is not None and (not refresh or cached[1] >= self.min_ttl / 2):
                self._stats["disk_hits"] += 1
                return cached[0], cached[1], False
        self._stats["fetches"] += 1
        try:
            got = _fetch.fetch(x5u, allow_http=self.allow_http, allow_loopback=self.allow_loopback,
                               tls_context=self._tls, limits=self._limits_left(), now=now)
        except _fetch.FetchError as e:
            self._stats["fetch_errors"] += 1
            return CredentialError(436, f"cannot obtain x5u {x5u}: {e}", f"fetch-{e.kind}"), self.negative_ttl, False
        # Not written to disk yet: only a chain that passes every check is shared with other
        # workers, or a transient bad answer would be pinned there for a day.
        return got.body, max(self.min_ttl, got.ttl or 0.0), True

    # ---------------------------------------------------------------- on-disk cache
    def _disk_path(self, x5u: str) -> Path:
        return self._cache_dir / (hashlib.sha256(x5u.encode()).hexdigest() + ".json")

    def _disk_lock(self, x5u: str) -> Optional[bool]:
        """Cross-process single flight for a fetch, through flock on `<hash>.lock` in cache_dir.

        False: locked at once (or no cache_dir / no flock: fetch without one); True: locked after
        another worker released it (its result may be on disk); None: the budget ran out waiting.
        The lock is held until the evaluation has written the trusted chain to disk.
        """
        if self._cache_dir is None or _fcntl is None:
            return False
        try:
            fd = os.open(self._disk_path(x5u).with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return False
        waited = False
        while True:
            try:
                _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = True
            except OSError:
                os.close(fd)
                return False
            if self._budget.deadline - time.monotonic() <= 0.02:
                os.close(fd)
                return None
            time.sleep(0.01)
        self._budget.lock = fd
        return waited

    def _disk_read(self, x5u: str, now: float):
        if self._cache_dir is None:
            return None
        try:
            with open(self._disk_path(x5u), "rb") as f:
                record = json.loads(f.read(4 * MAX_CHAIN_BYTES))
            if record.get("url") != x5u or not isinstance(record.get("expires"), (int, float)):
                return None
            if now >= record["expires"]:
                return None
            return base64.b64decode(record["body"], validate=True), record["expires"] - now
        except (OSError, ValueError, TypeError, AttributeError):
            return None  # absent, torn by a crash before rename, or foreign: fetch again

    def _disk_write(self, x5u: str, body: bytes, expires: float) -> None:
        if self._cache_dir is None:
            return
        record = json.dumps({"url": x5u, "expires": expires,
                             "body": base64.b64encode(body).decode("ascii")}).encode()
        try:
            # Write beside the target and rename: readers in other processes see the old file
            # or the new one, never a part of either.
            fd, tmp = tempfile.mkstemp(dir=self._cache_dir, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(record)
                os.replace(tmp, self._disk_path(x5u))
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
            self._disk_trim()
        except OSError:
            pass  # a full or read-only disk costs a fetch later, never a call

    def _disk_trim(self) -> None:
        try:
            entries = list(self._cache_dir.iterdir())
        except OSError:
            return
        files = [p for p in entries if p.suffix == ".json"]
        # Temporary files of a worker killed mid-write, and lock files of URLs no longer cached,
        # once they are an hour old (an hour-old lock is not held by a fetch within budget).
        old = time.time() - 3600
        for p in entries:
            stale = p.name.startswith(".tmp-") or (p.suffix == ".lock" and not p.with_suffix(".json").exists())
            try:
                if stale and p.stat().st_mtime < old:
                    p.unlink()
            except OSError:
                pass
        excess = len(files) - self.cache_dir_max_files
        if excess <= 0:
            return
        def mtime(p):
            try:
                return p.stat().st_mtime
            except OSError:
                return 0.0
        for p in sorted(files, key=mtime)[:excess]:
            try:
                p.unlink()
            except OSError:
                pass

    # ---------------------------------------------------------------- evaluation
    def _evaluate(self, x5u: str, now: float, refresh: bool = False) -> _Entry:
        self._stats["loads"] += 1
        # One time budget for the whole evaluation: the x5u fetch and any CRL fetches share it,
        # so a miss never holds the calling worker longer than total_timeout.
        self._budget.deadline = time.monotonic() + self.limits.total_timeout
        self._budget.lock = None
        try:
            return self._evaluate_locked(x5u, now, refresh)
        finally:
            fd, self._budget.lock = self._budget.lock, None
            if fd is not None:
                os.close(fd)  # releases the cross-process fetch lock, after the disk write

    def _evaluate_locked(self, x5u: str, now: float, refresh: bool) -> _Entry:
        data, ttl, fetched = self._obtain(x5u, now, refresh)
        outcome, window, recheck = self._trust(x5u, data, now)
        if isinstance(outcome, CredentialError):
            self._reject(outcome.reason)
            until = now + (ttl if isinstance(data, CredentialError) else self.negative_ttl)
            return _Entry(outcome, float("-inf"), float("inf"), until, until)
        if not window[0] <= now <= window[1]:
            self._reject("expired" if now > window[1] else "not-yet-valid")
        if now > window[1]:
            # Expired already: the warm path answers 437 from this entry, and the URL is looked
            # at again after the negative TTL (a renewal may be published there) — not on
            # every call, which would parse and validate the chain (and fetch it) each time.
            until = now + self.negative_ttl
            return _Entry(outcome, window[0], window[1], until, until)
        if fetched:
            self._disk_write(x5u, data, now + ttl)
        expires = min(now + ttl, window[1] + 1.0, recheck)
        lifetime = max(0.0, expires - now)
        refresh = expires if self.refresh_ahead >= 1 else now + self.refresh_ahead * lifetime
        return _Entry(outcome, window[0], window[1], expires, refresh)

    def _limits_left(self, **changes) -> _fetch.Limits:
        """The fetch limits with total_timeout cut to what is left of this evaluation's budget;
        FetchError when nothing is left."""
        deadline = getattr(self._budget, "deadline", None)
        left = self.limits.total_timeout if deadline is None else deadline - time.monotonic()
        if left <= 0.01:
            raise _fetch.FetchError(f"the {self.limits.total_timeout:g} s budget is used up", "timeout")
        return self.limits._replace(total_timeout=min(self.limits.total_timeout, left), **changes)

    def _reject(self, reason: str) -> None:
        # Keyed by a fixed slug, never by text carrying the URL: callers choose x5u values, and
        # the counters must not grow with them.
        self._stats["rejections"] += 1
        reason = reason or "other"
        self._rejections[reason] = self._rejections.get(reason, 0) + 1

    def _trust(self, x5u: str, data, now: float):
        if isinstance(data, CredentialError):
            return data, None, None
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
        at = min(max(now, start), end)
        try:
            path = self._validate_path(signer, intermediates, at)
        except verification.VerificationError as e:
            return CredentialError(437, f"signer certificate {x5u} is not trusted: {_short(e)}", "untrusted"), None, None
        revoked, recheck = self._revocation(signer, path, now)
        if revoked:
            return revoked, None, None
        tn_auth = _profile.tn_auth_list(signer)
        spc = tn_auth.spcs[0] if tn_auth and tn_auth.spcs else None
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
            fingerprint=hashlib.sha256(signer.public_bytes(_DER)).hexdigest(),
            policies=_profile.policy_oids(signer),
        )
        return credential, (start, end), recheck

    def _validate_path(self, cert: x509.Certificate, intermediates, at: float) -> List[x509.Certificate]:
        verifier = (
            verification.PolicyBuilder()
            .store(self._x509_store)
            .time(_when(at))
            .max_chain_depth(MAX_CHAIN_CERTS)
            .extension_policies(
                ca_policy=_CA_POLICY,
                ee_policy=verification.ExtensionPolicy.permit_all(),
            )
            .build_client_verifier()
        )
        return verifier.verify(cert, list(intermediates)).chain

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
        detail = "; ".join(problems) or "no usable CRL"
        if self.crl_policy == "fail-open":
            self._stats["crl_fail_open"] += 1
            return None, now + self.negative_ttl
        return CredentialError(437, f"revocation status unknown ({detail}); crl_policy is fail-closed", "crl-unavailable"), None

    def _apply(self, crl_obj, crl_signer, signer, indirect, now, recheck):
        problem = _crl.check_crl(crl_obj, crl_signer, now, self.crl_refresh)
        if problem:
            if self.crl_policy == "fail-open":
                self._stats["crl_fail_open"] += 1
                return None, now + self.negative_ttl
            return CredentialError(437, f"revocation status unknown ({problem}); crl_policy is fail-closed", "crl-unavailable"), None
        self._crl_used[crl_obj.issuer.rfc4514_string()] = crl_obj.last_update_utc.timestamp()
        if _crl.is_revoked(crl_obj, signer, indirect):
            return CredentialError(437, f"signer certificate serial {signer.serial_number:x} is revoked", "revoked"), None
        if crl_obj.next_update_utc is not None:
            recheck = min(recheck, crl_obj.next_update_utc.timestamp())
        return None, recheck

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
        except verification.VerificationError as e:
            return f"CRL issuer certificate {name.rfc4514_string()} is not trusted at this time: {_short(e)}"
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
            if not self.fetch_enabled:
                errors.append(f"CRL {url} is not in the local copy and fetching is off")
                continue
            self._stats["crl_fetches"] += 1
            try:
                # CRLs are signed objects usually published over plain http.
                got = _fetch.fetch(url, allow_http=True, allow_loopback=self.allow_loopback,
                                   tls_context=self._tls, limits=self._limits_left(max_bytes=4 << 20),
                                   now=now, any_http_host=True)
                crls = _crl.load_crls(got.body)
                crl_obj = _crl.pick(crls, issuer_name)
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


# CA certificates: the Web PKI defaults of cryptography's verifier (BasicConstraints critical
# with cA, KeyUsage keyCertSign, path length, no unknown critical extension), except the EKU
# chaining rule of the TLS world. RFC 5280 path validation does not process EKU, and an STI CA
# carrying an EKU without id-kp-clientAuth would otherwise be refused.
_CA_POLICY = verification.ExtensionPolicy.webpki_defaults_ca().may_be_present(
    x509.ExtendedKeyUsage, verification.Criticality.AGNOSTIC, None)


def _tls_context(tls_ca) -> Optional[ssl.SSLContext]:
    if tls_ca is None:
        return None
    # Only the given CA: a lab's TLS trust never mixes with the system's web roots.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        if isinstance(tls_ca, bytes):
            ctx.load_verify_locations(cadata=tls_ca.decode("ascii"))
        elif isinstance(tls_ca, str) and "-----BEGIN" in tls_ca:
            ctx.load_verify_locations(cadata=tls_ca)
        else:
            ctx.load_verify_locations(cafile=os.fspath(tls_ca))
    except (OSError, ssl.SSLError, TypeError, ValueError) as e:
        raise ConfigError(f"tls_ca cannot be loaded: {e}") from None
    return ctx


def _short(e: Exception) -> str:
    text = str(e)
    return text.split(" (encountered processing", 1)[0][:300]


from cryptography.hazmat.primitives.serialization import Encoding as _Encoding  # noqa: E402

_DER = _Encoding.DER
