"""CertStore: where a signer's certificate is obtained, trusted and cached — the facade.

    store = CertStore(trust_anchors=[...], certificates="/var/lib/man/certs", profile="man", ...)
    store.credential(x5u, now)   # the per-call path: a Credential or a CredentialError, never raises
    store.warm()                 # validate the whole local copy ahead of traffic
    store.stats()                # counters to export
    store.authorizes(credential, tn)
    store.skipped_anchors        # trust anchors that could not be parsed (logged at start-up)

The parts, each in its module: options.py (every setting, checked once), local.py (the MAN local
copy: mapping, directory, manifest), cache.py (the per-call path, LRU and failure caches, single
flight, refresh-ahead, the on-disk cache shared by workers), fetch.py (the x5u/CRL fetch and its
time budget), trust.py (path validation, profile, SPC allow-list, CRLs). This module puts them in
order for one x5u: local copy, then the disk cache, then a fetch; then trust; then the cache.

Trust is decided once, when a chain enters the cache; the per-call path for a known x5u is a dict
lookup and two float comparisons: no X.509 parsing, no I/O.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple, Union

from . import fetch as _fetch
from ._warn import RateLimited
from .cache import CredentialCache, DiskCache, Entry
from .local import MANIFEST, LocalCopy, TooLarge  # noqa: F401 - MANIFEST: manverify.reload watches it
from .model import MAX_CHAIN_BYTES, Credential, CredentialError
from .options import StoreOptions
from .tnauthlist import TNAuthList
from .trust import SkippedAnchor, Trust

log = logging.getLogger(__name__)


class CertStore(CredentialCache):
    """Signer certificates by x5u URL, validated against the trust anchors and the profile.

    Takes the options of StoreOptions as keyword arguments (docs/certificates.md): a name that is
    not an option, or a value of the wrong type, raises ConfigError.
    """

    def __init__(
        self,
        trust_anchors: Any = None,
        certificates: Union[None, str, os.PathLike, Mapping[str, Union[bytes, str]]] = None,
        crls: Any = None,
        cache_dir: Optional[Union[str, os.PathLike]] = None,
        allow_http: bool = False,
        profile: str = "man",
        **options: Any,
    ):
        self._configure(StoreOptions.create(
            trust_anchors=trust_anchors, certificates=certificates, crls=crls, cache_dir=cache_dir,
            allow_http=allow_http, profile=profile, **options))

    @classmethod
    def from_options(cls, options: StoreOptions) -> "CertStore":
        """A store built from `options`, reading every file they name (a reload builds a new one)."""
        store = cls.__new__(cls)
        store._configure(options)
        return store

    def _configure(self, options: StoreOptions) -> None:
        self.options = options
        limits = _fetch.Limits(options.connect_timeout, options.total_timeout, options.max_bytes, options.https_ports)
        self._fetcher = _fetch.Fetcher(options.fetch, options.allow_http, options.allow_loopback, options.tls_ca, limits)
        self._trust = Trust(options, self._fetcher)
        # Trust anchors that could not be parsed, logged at start-up: SkippedAnchor(name, reason)
        # each, the name being the subject when it can be read, else the SHA-256 of the bytes.
        self.skipped_anchors: Tuple[SkippedAnchor, ...] = self._trust.skipped_anchors
        self._local = LocalCopy(options.certificates)
        self._disk = DiskCache(options.cache_dir, options.cache_dir_max_files) if options.cache_dir is not None else None
        self._init_cache(options.max_entries, options.negative_ttl, wait=options.total_timeout + 1.0)
        self._counts.update(loads=0, fetches=0, fetch_errors=0, disk_hits=0)
        self._fetch_warn = RateLimited(log)

    # ---------------------------------------------------------------- the contract
    @property
    def profile(self) -> str:
        return self.options.profile

    def warm(self, urls: Optional[Iterable[str]] = None,
             now: Optional[float] = None) -> Dict[str, Union[Credential, CredentialError]]:
        """Load and validate these x5u URLs now (e.g. the whole MAN local copy at start-up).

        Without urls: every URL the local copy names (the certificates= mapping's keys and the
        directory manifest's) — and, for a directory without a manifest, every certificate file
        in it (.pem .crt .cer .der), validated and reported by its path, since no URL names it
        (the cache is filled when a call first names it).
        """
        t = time.time() if now is None else now
        if urls is not None:
            return {url: self.credential(url, t) for url in urls}
        out = {url: self.credential(url, t) for url in self._local.urls()}
        for path in self._local.unnamed_files():
            try:
                data = self._local.read_file(path)
            except (OSError, TooLarge) as e:
                out[str(path)] = CredentialError(436, f"local copy {path}: {e}", "unparsable")
                continue
            outcome, window, _ = self._trust.evaluate(str(path), data, t)
            if not isinstance(outcome, CredentialError) and not window[0] <= t <= window[1]:
                outcome = CredentialError(437, f"certificate chain in {path} is not valid now",
                                          "expired" if t > window[1] else "not-yet-valid")
            out[str(path)] = outcome
        return out

    def stats(self) -> Dict[str, Any]:
        """Counters a proxy can export: cache hits/misses, fetches, rejections by reason, CRL age."""
        out = self._cache_stats()
        out.update(self._trust.counts)
        # Age of the CRLs in use (now - thisUpdate), per issuer and the oldest: alert on these.
        wall = time.time()
        out["crl_ages"] = {name: max(0.0, wall - t) for name, t in self._trust.crl_used.items()}
        out["crl_age"] = max(out["crl_ages"].values()) if out["crl_ages"] else None
        return out

    def authorizes(self, credential: Credential, tn: str) -> bool:
        """Whether a credential may sign for canonical number `tn`.

        SPC-only certificates (the SHAKEN/MAN case) authorise the operator, not numbers: True.
        A TN-bearing certificate (ranges or single numbers) must list the number.
        """
        if not credential.tn_ranges and not credential.tn_ones:
            return True
        return TNAuthList((), credential.tn_ranges, credential.tn_ones).covers(tn)

    # ---------------------------------------------------------------- one x5u, in order
    def _evaluate(self, x5u: str, now: float, refresh: bool = False) -> Entry:
        self._counts["loads"] += 1
        deadline = self._fetcher.start_budget()
        lock = None
        try:
            data, ttl, fetched, lock = self._obtain(x5u, now, refresh, deadline)
            if isinstance(data, CredentialError):
                outcome, window, recheck = data, None, None
            else:
                outcome, window, recheck = self._trust.evaluate(x5u, data, now)
            if isinstance(outcome, CredentialError):
                self._reject(outcome.reason)
                return Entry.failure(outcome, now + (ttl if outcome is data else self.options.negative_ttl))
            if not window[0] <= now <= window[1]:
                self._reject("expired" if now > window[1] else "not-yet-valid")
            if now > window[1]:
                # Expired already: the warm path answers 437 from this entry, and the URL is looked
                # at again after the negative TTL (a renewal may be published there) — not on
                # every call, which would parse and validate the chain (and fetch it) each time.
                until = now + self.options.negative_ttl
                return Entry(outcome, window[0], window[1], until, until)
            if fetched and self._disk is not None:
                self._disk.write(x5u, data, now + ttl)
            expires = min(now + ttl, window[1] + 1.0, recheck)
            lifetime = max(0.0, expires - now)
            ahead = self.options.refresh_ahead
            return Entry(outcome, window[0], window[1], expires, expires if ahead >= 1 else now + ahead * lifetime)
        finally:
            if lock is not None:
                os.close(lock)  # releases the cross-process fetch lock, after the disk write

    def _obtain(self, x5u: str, now: float, refresh: bool, deadline: float):
        """(chain bytes or CredentialError(436), seconds they may be reused, whether they were
        fetched just now and may go to the disk cache once trusted, the disk lock to release)."""
        negative = self.options.negative_ttl
        try:
            data = self._local.get(x5u)
        except TooLarge as e:
            return CredentialError(436, str(e), "oversized"), negative, False, None
        if data is not None:
            # A directory is the operator's daily sync of the MAN export: read it again after
            # min_ttl (in the background, see refresh_ahead). A mapping never changes.
            ttl = self.options.min_ttl if self._local.directory is not None else float("inf")
            return data, ttl, False, None
        disk = self._disk
        if disk is not None and not refresh:
            cached = disk.read(x5u, now, MAX_CHAIN_BYTES)
            if cached is not None:
                self._counts["disk_hits"] += 1
                return cached[0], cached[1], False, None
        if not self._fetcher.enabled:
            return CredentialError(436, f"no certificate for x5u {x5u} in the local copy (fetching is off)",
                                   "not-in-local-copy"), negative, False, None
        lock = None
        if disk is not None:
            waited, lock = disk.lock(x5u, deadline)
            if waited is None:
                return CredentialError(436, f"x5u {x5u} is being fetched by another worker and the time budget "
                                            f"ran out", "fetch-timeout"), negative, False, None
            if waited or refresh:
                # Another worker may have fetched it meanwhile. A background refresh takes the disk
                # copy only if it was written recently (half of min_ttl left): then N workers
                # refreshing the same URL make one request, not N.
                cached = disk.read(x5u, now, MAX_CHAIN_BYTES)
                if cached is not None and (not refresh or cached[1] >= self.options.min_ttl / 2):
                    self._counts["disk_hits"] += 1
                    return cached[0], cached[1], False, lock
        self._counts["fetches"] += 1
        try:
            got = self._fetcher.chain(x5u, now)
        except _fetch.FetchError as e:
            self._counts["fetch_errors"] += 1
            self._fetch_warn.warning(x5u, "cannot fetch x5u %s: %s", x5u, e)
            return CredentialError(436, f"cannot obtain x5u {x5u}: {e}", f"fetch-{e.kind}"), negative, False, lock
        # Not written to disk yet: only a chain that passes every check is shared with other
        # workers, or a transient bad answer would be pinned there for a day.
        return got.body, max(self.options.min_ttl, got.ttl or 0.0), True, lock
