"""Reload without restart: configuration files looked at about once a second, applied atomically.

    watch = Watch(paths, build, apply, what="trust anchors")

manverify.ticker's background thread calls check() about once a second (never the per-call
path). When a file's identity (inode, size, modification time) differs from the last look,
build() reads everything into a complete new configuration; only when that succeeds does
apply(new) swap it in, with one reference assignment, so a call sees the old configuration or
the new one, never a mix. A file that cannot be read or is invalid (caught half-written, a
typo) keeps the configuration in use and logs a warning saying why; the next change is tried
again. Both an atomic rename and an in-place write are seen.

Used by Verifier(reload=True) (trust anchors, CRL signers, the local copy's manifest), by the
Kamailio integration (its JSON, hence the policy) and meant for `manverify serve`.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterable, List, Optional, Tuple

from . import ticker

log = logging.getLogger("manverify.reload")

_Identity = Optional[Tuple[int, int, int, int]]


def _identity(path: Path) -> _Identity:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


class Watch:
    """Files whose change means: build the configuration again, and use it if it is good."""

    def __init__(self, paths: Iterable[os.PathLike], build: Callable[[], Any], apply: Callable[[Any], None],
                 what: str, *, background: bool = True):
        self.paths: Tuple[Path, ...] = tuple(Path(p) for p in paths)
        self.what = what
        self.reloads = 0  # configurations applied
        self.failures = 0  # changes refused (the configuration in use was kept)
        self.error = ""  # why the last change was refused, "" once a later one applied
        self.changed: Tuple[Path, ...] = ()  # the files that changed, while build() runs
        self._build, self._apply = build, apply
        self._seen = self._look()
        if background and self.paths:
            ticker.add(self.check)

    def _look(self) -> Tuple[_Identity, ...]:
        return tuple(_identity(p) for p in self.paths)

    def check(self) -> bool:
        """Reload if a file changed since the last look; True when a new configuration is in use."""
        seen = self._look()
        if seen == self._seen:
            return False
        self.changed = tuple(p for p, a, b in zip(self.paths, seen, self._seen) if a != b)
        self._seen = seen
        try:
            new = self._build()
        except Exception as e:  # noqa: BLE001 — whatever the new files hold, the old configuration stays
            self.failures += 1
            self.error = str(e) or type(e).__name__
            log.warning("%s changed but cannot be used, keeping the configuration in use: %s", self.what, self.error)
            return False
        self._apply(new)
        self.reloads += 1
        self.error = ""
        log.info("%s reloaded from %s", self.what, ", ".join(str(p) for p in self.paths))
        return True


def config_files(*options: Any) -> List[Path]:
    """The files among configuration options that name certificates by path (str/PathLike items,
    alone or in a list); bytes and ready objects cannot change and are left out. A directory
    counts with its manifest (manverify.certs' local copy), so adding, removing or renaming a
    file in it, or editing the manifest, is a change."""
    from .certs.store import MANIFEST

    out: List[Path] = []
    for option in options:
        items = [option] if isinstance(option, (str, bytes, os.PathLike)) else option
        if not isinstance(items, (list, tuple)):  # None, a {x5u: chain} mapping, a ready object
            continue
        for item in items:
            if isinstance(item, (str, os.PathLike)):
                path = Path(item)
                out.append(path)
                if path.is_dir():
                    out.append(path / MANIFEST)
    return out
