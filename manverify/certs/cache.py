"""The certificate cache: the per-call path and what keeps it fast and bounded.

In memory: trusted credentials in one LRU, failures (and expired chains) in another of the same
bound, so junk x5u values chosen by callers can only evict other failures. Concurrent misses on
one URL wait for a single evaluation (single flight); past `refresh_ahead` of an entry's life
calls are still answered from cache while a background thread evaluates the URL again.

On disk (`cache_dir=`): chains that passed every check, shared by worker processes, written by
atomic rename and bounded in files; an flock on `<hash>.lock` lets workers fetch a URL once
between them.
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from cachetools import LRUCache

try:
    import fcntl as _fcntl
except ImportError:  # not POSIX: no cross-process single flight, each worker fetches once
    _fcntl = None

from ..errors import ConfigError
from ._warn import RateLimited
from .model import Credential, CredentialError

MAX_X5U_CHARS = 2048

log = logging.getLogger(__name__)


def when(epoch: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc)


class Entry:
    """A cached outcome: the window in which the chain is valid, and when to look again."""

    __slots__ = ("outcome", "valid_from", "valid_until", "expires", "refresh")

    def __init__(self, outcome, valid_from: float, valid_until: float, expires: float, refresh: float):
        self.outcome = outcome
        self.valid_from = valid_from
        self.valid_until = valid_until
        self.expires = expires  # re-obtain and re-evaluate after this
        self.refresh = refresh  # start a background refresh after this

    @classmethod
    def failure(cls, error: CredentialError, until: float) -> "Entry":
        return cls(error, float("-inf"), float("inf"), until, until)


class CredentialCache:
    """x5u → Entry, with the per-call `credential()`. The subclass (CertStore) says how an x5u is
    evaluated: `_evaluate(x5u, now, refresh) -> Entry`."""

    def _init_cache(self, max_entries: int, negative_ttl: float, wait: float) -> None:
        self._cache: LRUCache = LRUCache(maxsize=max_entries)  # x5u -> Entry holding a Credential
        self._failed: LRUCache = LRUCache(maxsize=max_entries)  # x5u -> Entry holding a CredentialError
        self._lock = threading.Lock()
        self._inflight: Dict[str, threading.Event] = {}
        self._refreshing: set = set()
        self._negative_ttl = negative_ttl  # how long a failure is remembered
        self._wait = wait  # how long a call waits for another thread's evaluation of its URL
        self._counts: Dict[str, int] = {"hits": 0, "misses": 0, "negative_hits": 0, "refreshes": 0,
                                        "rejections": 0}
        self._rejections: Dict[str, int] = {}
        self._warn = RateLimited(log)

    def _evaluate(self, x5u: str, now: float, refresh: bool = False) -> Entry:
        raise NotImplementedError

    # ---------------------------------------------------------------- the per-call path
    def credential(self, x5u: str, now: float) -> Union[Credential, CredentialError]:
        """The trusted credential for x5u at time `now`; never raises for call data."""
        if type(x5u) is not str:  # an unhashable value would make the cache lookup raise
            return CredentialError(436, f"x5u must be a URL string, not {type(x5u).__name__}", "fetch-url")
        with self._lock:  # cachetools caches are not thread-safe; the lock is uncontended in practice
            entry = self._cache.get(x5u) or self._failed.get(x5u)
            if entry is not None and now < entry.expires:
                self._counts["hits"] += 1
                if isinstance(entry.outcome, CredentialError):
                    self._counts["negative_hits"] += 1
            else:
                self._counts["misses"] += 1
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
            return CredentialError(437, f"certificate chain for {x5u} is not valid before {when(entry.valid_from):%Y-%m-%d %H:%M:%SZ}", "not-yet-valid")
        if now > entry.valid_until:
            return CredentialError(437, f"certificate chain for {x5u} expired at {when(entry.valid_until):%Y-%m-%d %H:%M:%SZ}", "expired")
        return outcome

    # ---------------------------------------------------------------- misses
    def _load(self, x5u: str, now: float) -> Entry:
        # Single flight: concurrent misses on one URL wait for the one evaluation under way.
        with self._lock:
            event = self._inflight.get(x5u)
            leader = event is None
            if leader:
                event = self._inflight[x5u] = threading.Event()
        if not leader:
            event.wait(self._wait)
            with self._lock:
                entry = self._cache.get(x5u) or self._failed.get(x5u)
            if entry is not None and now < entry.expires:
                return entry
            return Entry.failure(CredentialError(436, f"certificate for {x5u} is still being fetched", "busy"), now)
        try:
            try:
                entry = self._evaluate(x5u, now)
            except Exception as e:  # a library surprise on hostile input must not reach the call
                self._reject("internal")
                log.exception("evaluating the certificate at %s failed unexpectedly", x5u)
                entry = Entry.failure(CredentialError(436, f"certificate at {x5u} could not be evaluated: "
                                                           f"{type(e).__name__}: {short(e)}", "internal"),
                                      now + self._negative_ttl)
            self._store(x5u, entry)
            return entry
        finally:
            with self._lock:
                del self._inflight[x5u]
            event.set()

    def _store(self, x5u: str, entry: Entry) -> None:
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
                else:
                    self._warn.warning(x5u, "background refresh of %s failed, the cached credential stays in use "
                                       "until it expires: %s", x5u, entry.outcome.detail)
                self._counts["refreshes"] += 1
            except Exception as e:  # the entry simply expires and is loaded again by a call
                self._warn.warning(x5u, "background refresh of %s failed: %s: %s", x5u, type(e).__name__, short(e))
            finally:
                with self._lock:
                    self._refreshing.discard(x5u)

        try:
            threading.Thread(target=run, name="manverify-refresh", daemon=True).start()
        except RuntimeError:  # no thread available: the entry is reloaded when it expires
            with self._lock:
                self._refreshing.discard(x5u)

    def _reject(self, reason: str) -> None:
        # Keyed by a fixed slug, never by text carrying the URL: callers choose x5u values, and
        # the counters must not grow with them.
        self._counts["rejections"] += 1
        reason = reason or "other"
        self._rejections[reason] = self._rejections.get(reason, 0) + 1

    def _cache_stats(self) -> Dict[str, Any]:
        out: Dict[str, Any] = dict(self._counts)
        out["entries"] = len(self._cache)
        out["failed_entries"] = len(self._failed)
        out["rejections_by_reason"] = dict(self._rejections)
        return out


class DiskCache:
    """Trusted chains on disk, shared by the worker processes of one host."""

    def __init__(self, directory: Union[str, os.PathLike], max_files: int):
        self.directory = Path(directory)
        self.max_files = max_files
        self._warn = RateLimited(log)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot create cache_dir {self.directory}: {e.strerror}") from None

    def _path(self, x5u: str) -> Path:
        return self.directory / (hashlib.sha256(x5u.encode()).hexdigest() + ".json")

    def lock(self, x5u: str, deadline: float) -> Tuple[Optional[bool], Optional[int]]:
        """Cross-process single flight for a fetch, through flock on `<hash>.lock`: (waited, fd).

        waited is False when locked at once (fd None: no flock here, fetch without one), True when
        locked after another worker released it (its result may be on disk), None when `deadline`
        (time.monotonic()) passed while waiting. The caller holds fd until the trusted chain is
        written, then closes it.
        """
        if _fcntl is None:
            return False, None
        try:
            fd = os.open(self._path(x5u).with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return False, None
        waited = False
        while True:
            try:
                _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
                return waited, fd
            except BlockingIOError:
                waited = True
            except OSError:
                os.close(fd)
                return False, None
            if deadline - time.monotonic() <= 0.02:
                os.close(fd)
                return None, None
            time.sleep(0.01)

    def read(self, x5u: str, now: float, max_bytes: int) -> Optional[Tuple[bytes, float]]:
        """(chain, seconds it may still be used) or None: absent, expired, torn or foreign."""
        try:
            with open(self._path(x5u), "rb") as f:
                record = json.loads(f.read(4 * max_bytes))
            if record.get("url") != x5u or not isinstance(record.get("expires"), (int, float)):
                return None
            if now >= record["expires"]:
                return None
            return base64.b64decode(record["body"], validate=True), record["expires"] - now
        except (OSError, ValueError, TypeError, AttributeError):
            return None  # absent, torn by a crash before rename, or foreign: fetch again

    def write(self, x5u: str, body: bytes, expires: float) -> None:
        record = json.dumps({"url": x5u, "expires": expires,
                             "body": base64.b64encode(body).decode("ascii")}).encode()
        try:
            # Write beside the target and rename: readers in other processes see the old file
            # or the new one, never a part of either.
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(record)
                os.replace(tmp, self._path(x5u))
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
            self._trim()
        except OSError as e:  # a full or read-only disk costs a fetch later, never a call
            self._warn.warning(str(self.directory), "cannot write to cache_dir %s: %s", self.directory, e.strerror or e)

    def _trim(self) -> None:
        try:
            entries = list(self.directory.iterdir())
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
        excess = len(files) - self.max_files
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


def short(e: BaseException) -> str:
    """An exception's text, without cryptography's long context, at most 300 characters."""
    text = str(e)
    return text.split(" (encountered processing", 1)[0][:300]
