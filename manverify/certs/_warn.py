"""Warnings that a caller can trigger at call rate (a dead x5u, a CRL that cannot be had), limited
so that neither one bad URL nor a stream of distinct junk URLs can flood the log."""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Callable, Hashable


class RateLimited:
    """At most one warning per key (an x5u URL, a CRL issuer) every `interval` seconds, and at most
    `burst` for all keys together in that time; the next one that gets through for a key says how
    many like it were held back in between."""

    def __init__(self, logger: logging.Logger, interval: float = 60.0, max_keys: int = 4096, burst: int = 100,
                 clock: Callable[[], float] = time.monotonic):
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._max_keys = max_keys  # callers choose URLs: the memory of them is bounded
        self._burst = burst
        self._window = [float("-inf"), 0]  # start of the current interval, warnings emitted in it
        self._seen: "OrderedDict[Hashable, list]" = OrderedDict()  # key -> [last emitted, held back]
        self._lock = threading.Lock()

    def warning(self, key: Hashable, msg: str, *args) -> None:
        if not self.logger.isEnabledFor(logging.WARNING):
            return
        now = self._clock()
        with self._lock:
            state = self._seen.get(key)
            if now - self._window[0] >= self.interval:
                self._window = [now, 0]
            if (state is not None and now - state[0] < self.interval) or self._window[1] >= self._burst:
                if state is None:
                    state = self._seen[key] = [float("-inf"), 0]
                state[1] += 1
                self._trim()
                return
            held = state[1] if state is not None else 0
            self._seen[key] = [now, 0]
            self._seen.move_to_end(key)
            self._window[1] += 1
            self._trim()
        if held:
            msg += " (%d more like it in the last %g s not logged)"
            args += (held, self.interval)
        self.logger.warning(msg, *args)

    def _trim(self) -> None:
        while len(self._seen) > self._max_keys:
            self._seen.popitem(last=False)
