"""The verification service: one call's Identity header(s) in, one Result out.

Verifier holds the configuration and runs the steps; what each step decides (the checks of one
header, the verdict across headers and div chains) is in checks.py, each rule written once for
the common path and the general path alike. verify() and verify_many() are the only ways out:
every Result leaves through one of them.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Mapping as _AnyMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from . import checks, es256
from .certs import PROFILES, CertStore
from .errors import ConfigError, UsageError
from .passport import decode_shaken, decode_shaken_many
from .reload import Watch, config_files
from .result import Result
from .stats import Stats, track

_CALL_KEYS = frozenset(("identity", "orig", "dest", "date", "now"))
_common_shape, _common_check, _common_result = checks.common_shape, checks.common_check, checks.common_result


class Verifier:
    """Verifies calls against a fixed trust configuration. Build once per process, then share.

    See API.md for the contract. Extra keyword options:
      allow_div      follow RFC 8946 div PASSporTs to a retargeted destination (default True)
      max_div        longest div chain followed (MAN: 5)
      threads        worker threads for verify_many (default: the number of CPUs)
      store          a ready CertStore (then the certificate keywords must be left out)
      reload         re-read the trust anchors, CRL signers and the local copy's manifest when
                     their files change (looked at about once a second in the background; a bad
                     file keeps the store in use and logs why). See manverify.reload.
      **cert_options passed to CertStore (fetch timeouts, caches, CRL policy, ...)
    """

    def __init__(
        self,
        trust_anchors: Any = None,
        certificates: Any = None,
        crls: Any = None,
        cache_dir: Optional[str] = None,
        max_age: int = 60,
        allow_http: bool = False,
        profile: str = "man",
        *,
        allow_div: bool = True,
        max_div: int = 5,
        threads: Optional[int] = None,
        store: Optional[CertStore] = None,
        reload: bool = False,
        **cert_options: Any,
    ):
        if profile not in PROFILES:
            raise ConfigError(f"profile must be one of {', '.join(PROFILES)}, not {profile!r}")
        if isinstance(max_age, bool) or not isinstance(max_age, (int, float)) or not 0 < max_age < float("inf"):
            raise ConfigError(f"max_age must be a positive number of seconds, not {max_age!r}")
        if type(allow_div) is not bool:
            raise ConfigError(f"allow_div must be True or False, not {allow_div!r}")
        if isinstance(max_div, bool) or not isinstance(max_div, int) or max_div < 0:
            raise ConfigError(f"max_div must be a non-negative int, not {max_div!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ConfigError(f"threads must be a positive int, not {threads!r}")
        if type(reload) is not bool:
            raise ConfigError(f"reload must be True or False, not {reload!r}")
        if store is None:
            if trust_anchors is None:
                raise ConfigError("trust_anchors is required (no implicit system roots)")
            options = dict(trust_anchors=trust_anchors, certificates=certificates, crls=crls, cache_dir=cache_dir,
                           allow_http=allow_http, profile=profile, **cert_options)
            store = CertStore(**options)
        elif not isinstance(store, CertStore):
            raise ConfigError(f"store must be a CertStore, not {type(store).__name__}")
        elif trust_anchors is not None or certificates is not None or crls is not None or cert_options:
            raise ConfigError("pass either store= or the certificate options, not both")
        elif reload:
            raise ConfigError("reload=True rebuilds the store from the certificate options: pass them, not store=")
        self.rules = checks.Rules(profile=profile, max_age=max_age, allow_div=allow_div, max_div=max_div,
                                  store=store)
        self.threads = threads or os.cpu_count() or 1
        self._pool: Optional[ThreadPoolExecutor] = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()
        self._stats = Stats()
        track(self)
        self._watch = None
        if reload:
            self._watch = Watch(config_files(trust_anchors, certificates, cert_options.get("crl_signers")),
                                lambda: CertStore(**options), self._use_store, "manverify trust configuration")

    def _use_store(self, store: CertStore) -> None:
        self.rules = self.rules._replace(store=store)  # one assignment: a call uses the old store or the new one

    # The configuration, read-only: a Verifier is shared by every call of a process.
    store = property(lambda self: self.rules.store)
    profile = property(lambda self: self.rules.profile)
    max_age = property(lambda self: self.rules.max_age)
    allow_div = property(lambda self: self.rules.allow_div)
    max_div = property(lambda self: self.rules.max_div)

    # ------------------------------------------------------------------ the per-call path
    def verify(
        self,
        identity: Union[str, bytes, Sequence[Union[str, bytes]], None],
        orig: Optional[str] = None,
        dest: Optional[str] = None,
        date: Optional[str] = None,
        now: Optional[float] = None,
    ) -> Result:
        """Verify one call. Never raises for call data; raises UsageError for wrong argument types,
        and EngineError when the native engine refuses its own arguments (a fault in manverify or
        its build, never a verdict: answer 500 and log it)."""
        return self._stats.record(self._decide(identity, orig, dest, date, now))

    def _decide(self, identity, orig=None, dest=None, date=None, now=None) -> Result:
        # verify() without counting: sip.check may verify one request twice (with its other
        # number) and counts only the verdict it keeps, through _count().
        rules = self.rules
        shape = _common_shape(identity, orig, dest, date, now, rules)
        if shape is not None:
            common = _common_check(shape, decode_shaken(shape.token, shape.info), rules)
            if common is not None:
                c, signing_input, signature = common
                if c.code is None:
                    c.signature_checked(es256.verify(c.credential.key, signing_input, signature))
                return _common_result(c)
        return self._verify_general(identity, orig, dest, date, now)

    def _count(self, result: Result) -> Result:
        return self._stats.record(result)

    def _verify_general(self, identity, orig, dest, date, now) -> Result:
        call, found, early = checks.prepare(identity, orig, dest, date, now, self.rules)
        if early is not None:
            return early
        for c in found:
            if c.pending_signature:
                c.signature_checked(es256.verify(c.credential.key, c.passport.signing_input, c.passport.signature))
        return checks.verdict(call, found, self.rules)

    def verify_many(self, calls: Iterable[Mapping[str, Any]]) -> List[Result]:
        """Verify a batch (mappings with verify()'s keywords); results in input order.

        Worker threads each take whole chunks: parse and check in Python, then one native call
        for the chunk's signatures, which releases the GIL — so one thread's C work overlaps the
        other's Python work, and the batch uses every core.

        Raises as verify() does. An EngineError in any chunk is raised from here, for the whole
        batch: no call gets a verdict the engine did not give.
        """
        calls = list(calls)
        for call in calls:
            # a dict's keys view compares as a set without building one: the usual call is cheap
            if type(call) is dict and call.keys() <= _CALL_KEYS:
                continue
            if not isinstance(call, _AnyMapping):
                raise UsageError(f"each call must be a mapping of verify() keywords, not {type(call).__name__}")
            unknown = set(call) - _CALL_KEYS
            if unknown:
                raise UsageError(f"unknown verify() keyword(s) {sorted(unknown)}")
        n = len(calls)
        if self.threads == 1 or n < 64:
            return self._stats.record_many(self._verify_chunk(calls))
        size = max(16, min(256, n // (self.threads * 4)))
        pool = self._executor()
        futures = [pool.submit(self._verify_chunk, calls[i:i + size]) for i in range(0, n, size)]
        out: List[Result] = []
        for f in futures:
            out.extend(f.result())
        return self._stats.record_many(out)

    def stats(self) -> dict:
        """Counters of this Verifier's verdicts since it was built (plain, JSON-ready), with the
        certificate store's under "certs"; per process. See manverify.stats."""
        out = self._stats.as_dict()
        out["certs"] = self.store.stats()
        return out

    def _verify_chunk(self, calls: List[Mapping[str, Any]]) -> List[Result]:
        # Each call goes down the common path (a check) or the general one (a preparation); the
        # common calls' tokens are decoded in one native scan, then one native batch checks every
        # signature still pending, and the verdicts follow. Both native calls release the GIL.
        rules = self.rules
        args = [(call.get("identity"), call.get("orig"), call.get("dest"), call.get("date"), call.get("now"))
                for call in calls]
        shapes = [_common_shape(*a, rules) for a in args]
        decoded = iter(decode_shaken_many([(s.token, s.info) for s in shapes if s is not None]))
        prepared: List[Tuple[Optional[checks.Check], Any]] = []
        pending: List[Tuple[Any, bytes, bytes, checks.Check]] = []  # key, signing input, r||s, check
        for a, shape in zip(args, shapes):
            common = None if shape is None else _common_check(shape, next(decoded), rules)
            if common is not None:
                c, signing_input, signature = common
                prepared.append((c, None))
                if c.code is None:
                    pending.append((c.credential.key, signing_input, signature, c))
                continue
            general = checks.prepare(*a, rules)
            prepared.append((None, general))
            if general[2] is None:
                pending.extend((c.credential.key, c.passport.signing_input, c.passport.signature, c)
                               for c in general[1] if c.pending_signature)
        if pending:
            keys, messages, signatures, found = zip(*pending)
            for c, good in zip(found, es256.verify_many(keys, messages, signatures)):
                c.signature_checked(good)
        out = []
        for c, general in prepared:
            if c is not None:
                out.append(_common_result(c))
            else:
                call_, found, early = general
                out.append(early if early is not None else checks.verdict(call_, found, rules))
        return out

    def _executor(self) -> ThreadPoolExecutor:
        # A pool made before fork() has no threads in the child: make a new one per process.
        with self._pool_lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="manverify")
                self._pool_pid = os.getpid()
            return self._pool

