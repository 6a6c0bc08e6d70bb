"""Warnings that a caller can trigger at call rate (a dead x5u, a CRL that cannot be had), limited
per subject so that one bad URL cannot flood the log."""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Callable, Hashable


class RateLimited:
    """At most one warning per key (an x5u URL, a CRL issuer) every `interval` seconds; the next
    one that gets through says how many were held back in between."""

    def __init__(self, logger: logging.Logger, interval: float = 60.0, max_keys: int = 4096,
                 clock: Callable[[], float] = time.monotonic):
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._max_keys = max_keys  # callers choose URLs: the memory of them is bounded
        self._seen: "OrderedDict[Hashable, list]" = OrderedDict()  # key -> [last emitted, held back]
        self._lock = threading.Lock()

    def warning(self, key: Hashable, msg: str, *args) -> None:
        if not self.logger.isEnabledFor(logging.WARNING):
            return
        now = self._clock()
        with self._lock:
            state = self._seen.get(key)
            if state is not None and now - state[0] < self.interval:
                state[1] += 1
                return
            held = state[1] if state is not None else 0
            self._seen[key] = [now, 0]
            self._seen.move_to_end(key)
            while len(self._seen) > self._max_keys:
                self._seen.popitem(last=False)
        if held:
            msg += " (%d more like it in the last %g s not logged)"
            args += (held, self.interval)
        self.logger.warning(msg, *args)
