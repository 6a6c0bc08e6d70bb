"""Operator lists for screening: block, allow and DNO (do-not-originate: inbound-only numbers, so a
call showing one is spoofed), global or per interconnect partner.

    lists = Lists.from_config({"block": ["block.txt"], "allow": ["allow.txt"], "dno": ["dno.txt"],
                               "partners": {"PARTNER": {"block": ["partner-block.txt"]}}}, base)
    hits = lists.match("33612345678", partner="PARTNER", now=time.time())
    hits.block  # None, or Hit(list="block", scope="global"|"PARTNER", source="block.txt:12",
                #                entry="number"|"prefix"|"range")

File format (numbers in any common form, `0162*` prefixes, `0162000000-0162999999` ranges, `#`
comments, `expires=2027-01-31` or `expires=2027-01-31T18:00:00Z` at the end of a line): see
manverify.screen.listfile. Relative paths are read from `base`.

A call's number is looked up in the global lists and in its partner's; an expired entry does not
match. Each of block / allow / dno reports one hit: an exact number before a range before a
prefix, and among entries of one kind the one that lasts longest. What wins (allow overrides
block) is the engine's business. A number that is not canonical digits (None, garbage, '*31#...')
matches nothing.

ListsWatch reloads the lists when a file changes: a complete new Lists is built and swapped in
with one assignment; a file with a bad line keeps the lists in use, and the log and stats() say
which line.
"""
from __future__ import annotations

import copy
import ctypes
import hashlib
import os
import time
from bisect import bisect_right
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from ..errors import ConfigError
from ..reload import Watch
from . import listfile
from .numtable import LBASE, NEVER, PAD16, NumberTable, Segments, prefix_interval, range_interval

LISTS = ("block", "allow", "dno")
MAX_REPORTED = 5  # bad lines named in a ConfigError; the rest are counted


class Hit(NamedTuple):
    list: str  # "block", "allow" or "dno"
    scope: str  # "global" or the partner's name
    source: str  # "file:line"
    entry: str  # "number", "prefix" or "range"


class ListHits(NamedTuple):
    block: Optional[Hit]
    allow: Optional[Hit]
    dno: Optional[Hit]


NO_HITS = ListHits(None, None, None)


class _File(NamedTuple):
    key: str  # the configuration key naming it, for messages: "lists.partners.X.block"
    path: Path
    group: int  # scope index * 3 + list index; scope 0 is global


def _spec(config: Mapping, base: Path) -> Tuple[Tuple[str, ...], Tuple[_File, ...]]:
    """(partner names, files in group order) from the `lists` configuration."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"lists must be a mapping of list names to lists of files, not {type(config).__name__}")
    unknown = set(config) - set(LISTS) - {"partners"}
    if unknown:
        raise ConfigError(f"lists: unknown key(s) {sorted(map(str, unknown))}; expected {list(LISTS)} and 'partners'")
    partners = config.get("partners") or {}
    if not isinstance(partners, Mapping):
        raise ConfigError("lists.partners must map partner names to their lists")
    names = tuple(sorted(partners, key=str))
    files: List[_File] = []
    for scope, (where, section) in enumerate([("lists", config)] + [(f"lists.partners.{n}", partners[n]) for n in names]):
        if scope and (not isinstance(names[scope - 1], str) or names[scope - 1] in ("", "global")):
            raise ConfigError(f"lists.partners: {names[scope - 1]!r} cannot name a partner (a hit's scope is "
                              "'global' or the partner's name)")
        if not isinstance(section, Mapping):
            raise ConfigError(f"{where} must be a mapping of list names to lists of files")
        if scope:
            bad = set(section) - set(LISTS)
            if bad:
                raise ConfigError(f"{where}: unknown key(s) {sorted(map(str, bad))}; expected {list(LISTS)}")
        for index, name in enumerate(LISTS):
            paths = section.get(name) or []
            key = f"{where}.{name}"
            if isinstance(paths, (str, bytes, os.PathLike)) or not isinstance(paths, (list, tuple)):
                raise ConfigError(f"{key} must be a list of file paths, not {type(paths).__name__}")
            for p in paths:
                if not isinstance(p, (str, os.PathLike)):
                    raise ConfigError(f"{key}: a file path must be a str, not {type(p).__name__}")
                files.append(_File(key, Path(base) / Path(p), scope * 3 + index))
    return names, tuple(files)


class Lists:
    """Every list of a screening configuration, read once; immutable (a reload builds another)."""

    def __init__(self, partners: Sequence[str], files: Sequence[_File], read: List[listfile.ListFile]):
        self._scopes = ("global",) + tuple(partners)
        self._known: Dict[int, tuple] = {}  # origin -> (scope, list index, Hit): hits made once
        self._partner = {name: i + 1 for i, name in enumerate(partners)}
        self._paths = tuple(str(f.path) for f in files)
        self._groups = tuple(f.group for f in files)
        self.files: Tuple[Path, ...] = tuple(f.path for f in files)
        # An entry's origin is its file's base + its line: one uint32 says file and line.
        bases, base = [], 0
        for lf in read:
            bases.append(base)
            base += lf.line_count + 1
        if base >= 1 << 32:
            raise ConfigError("lists: more than 2**32 lines in all")
        self._bases = tuple(bases)
        self._iorigin: List[int] = []
        self._iexpiry: List[int] = []
        ranges, prefixes = [], []
        for f, lf, b in zip(files, read, bases):
            for line, first, last, expiry in lf.ranges:
                lo, hi = range_interval(first, last)
                ranges.append((lo, hi, f.group, self._rank(expiry, hi - lo, b + line), self._entry(b + line, expiry)))
            for line, digits, expiry in lf.prefixes:
                for p in digits:
                    lo, hi = prefix_interval(p)
                    prefixes.append((lo, hi, f.group, self._rank(expiry, hi - lo, b + line), self._entry(b + line, expiry)))
        self._ranges = Segments(ranges) if ranges else None
        self._prefixes = Segments(prefixes) if prefixes else None
        self._range_heads = _heads(_common(first, last) for lf in read for _, first, last, _ in lf.ranges)
        self._prefix_heads = _heads(p for lf in read for _, digits, _ in lf.prefixes for p in digits)
        counts: Dict[str, Dict[str, int]] = {}
        for f, lf in zip(files, read):
            c = counts.setdefault(f"{self._scopes[f.group // 3]}.{LISTS[f.group % 3]}",
                                  {"numbers": 0, "prefixes": 0, "ranges": 0})
            c["numbers"] += len(lf.keys)
            c["prefixes"] += len(lf.prefixes)
            c["ranges"] += len(lf.ranges)
        self._counts = counts
        self._numbers = self._number_table(read)
        digest = hashlib.blake2b(digest_size=6)
        for f, lf in zip(files, read):
            digest.update(b"%d:" % f.group + lf.digest)
        self.version: Dict[str, Any] = {
            "numbers": sum(c["numbers"] for c in counts.values()),
            "prefixes": sum(c["prefixes"] for c in counts.values()),
            "ranges": sum(c["ranges"] for c in counts.values()),
            "digest": digest.hexdigest(),
        }

    @classmethod
    def from_config(cls, config: Mapping, base: Path = Path(".")) -> "Lists":
        """Read every file the `lists` configuration names; ConfigError naming the key and
        file:line of the first bad lines, or the file that cannot be read."""
        partners, files = _spec(config, base)
        read, problems, more = [], [], 0
        for f in files:
            try:
                lf = listfile.read(f.path)
            except OSError as e:
                problems.append(f"{f.key}: cannot read {f.path}: {e.strerror or e}")
                continue
            read.append(lf)
            for line, why in lf.errors:
                if len(problems) < MAX_REPORTED:
                    problems.append(f"{f.key}: {f.path}:{line}: {why}")
                else:
                    more += 1
            more += lf.error_count - len(lf.errors)
        if problems:
            tail = f" (and {more} more bad lines)" if more else ""
            raise ConfigError("; ".join(problems) + tail)
        lists = cls(partners, files, read)
        del read
        _release_freed_memory()
        return lists

    def _number_table(self, read: List[listfile.ListFile]) -> NumberTable:
        """The numbers of every file in one table. Takes the files' arrays (read[i] loses
        them): at 10 M numbers every copy is 80 MB."""
        if len(read) == 1:
            keys, origin = read[0].keys, read[0].lines  # the first file's base is 0
        else:
            keys = np.concatenate([lf.keys for lf in read] + [np.zeros(0, np.uint64)])
            origin = np.concatenate([lf.lines + np.uint32(b) for lf, b in zip(read, self._bases)]
                                    + [np.zeros(0, np.uint32)])
        group = None
        if len(set(self._groups)) > 1:
            group = np.concatenate([np.full(len(lf.keys), g, dtype=np.uint16) for lf, g in zip(read, self._groups)]
                                   + [np.zeros(0, np.uint16)])
        expiry = None
        if any(lf.expiry is not None for lf in read):
            expiry = np.concatenate([np.zeros(len(lf.keys), np.uint32) if lf.expiry is None else lf.expiry for lf in read])
        for i, lf in enumerate(read):
            read[i] = lf._replace(keys=None, lines=None, expiry=None)
        return NumberTable.build(keys, origin, expiry, group, consume=True)

    @staticmethod
    def _rank(expiry: int, width: int, origin: int) -> tuple:
        # Never-expiring first, then the latest expiry (see Segments), then the narrowest, the first.
        return (0, 0, width, origin) if expiry == NEVER else (1, -expiry, width, origin)

    def _entry(self, origin: int, expiry: int) -> int:
        self._iorigin.append(origin)
        self._iexpiry.append(expiry)
        return len(self._iorigin) - 1

    def _hit(self, found: list, origin: int, pidx: int, entry: str) -> None:
        """Record origin's hit unless its list has one already or it is another partner's."""
        known = self._known.get(origin)
        if known is None:
            f = bisect_right(self._bases, origin) - 1
            scope, index = divmod(self._groups[f], 3)
            source = f"{self._paths[f]}:{origin - self._bases[f]}"
            known = (scope, index, tuple.__new__(Hit, (LISTS[index], self._scopes[scope], source, entry)))
            if len(self._known) >= 4096:  # the numbers being called now; a blocked campaign hits again and again
                self._known.clear()
            self._known[origin] = known
        scope, index, hit = known
        if (scope and scope != pidx) or found[index] is not None:
            return
        found[index] = hit

    def match(self, e164: str, partner: Optional[str], now: float) -> ListHits:
        """The hits of a canonical number for a call from `partner` at `now` (Unix seconds)."""
        if type(e164) is not str or not e164.isdigit() or len(e164) > 15 or not e164.isascii():
            return NO_HITS
        length = len(e164)
        v = int(e164)
        k = LBASE[length] + v
        # The usual call is on no list: three look-ups and nothing else.
        numbers = self._numbers.find(k)
        ranges = prefixes = ()
        if self._ranges is not None:
            h, heads = self._range_heads
            if not h or e164[:h] in heads:
                ranges = self._ranges.find(k)
        if self._prefixes is not None:
            h, heads = self._prefix_heads
            if not h or e164[:h] in heads:
                prefixes = self._prefixes.find(v * PAD16[length] + length)
        if not (numbers or ranges or prefixes):
            return NO_HITS
        return self._hits(numbers, ranges, prefixes, partner, now)

    def _hits(self, numbers, ranges, prefixes, partner, now) -> ListHits:
        try:
            pidx = self._partner.get(partner, -1)
        except TypeError:  # an unhashable partner is no partner of ours
            pidx = -1
        if not isinstance(now, (int, float)):
            now = time.time()
        found: list = [None, None, None]
        expiry, origin = self._numbers._expiry_v, self._numbers._origin_v
        for i in numbers:
            if expiry is None or not 0 != expiry[i] <= now:
                self._hit(found, origin[i], pidx, "number")
        for entries, kind in ((ranges, "range"), (prefixes, "prefix")):
            for e in entries:
                if not 0 != self._iexpiry[e] <= now:
                    self._hit(found, self._iorigin[e], pidx, kind)
        return tuple.__new__(ListHits, found) if found != [None, None, None] else NO_HITS

    def stats(self) -> Dict[str, Any]:
        return {
            "lists": {k: dict(v) for k, v in self._counts.items()},
            **self.version,
            "distinct_numbers": self._numbers.size,  # per list and scope: a number twice in one list is one
            "files": len(self.files),
            "segments": (len(self._ranges) if self._ranges else 0) + (len(self._prefixes) if self._prefixes else 0),
            "bytes": self._numbers.nbytes() + sum(s.nbytes() for s in (self._ranges, self._prefixes) if s),
        }


def _common(first: str, last: str) -> str:
    """The digits every number of the range first..last starts with."""
    n = 0
    while n < len(first) and first[n] == last[n]:
        n += 1
    return first[:n]


def _heads(starts: Iterable[str], most: int = 1 << 16) -> Tuple[int, frozenset]:
    """(h, the first h digits of every entry), h the shortest entry's length: a number whose
    first h digits are not among them is under no entry, which a set look-up says for a
    fraction of a bisect of the segments. (0, ...) when there is no such filter (an entry of
    no digit in common, or too many heads to hold cheaply)."""
    starts = list(starts)
    h = min(map(len, starts), default=0)
    heads = frozenset(s[:h] for s in starts) if h else frozenset()
    return (h, heads) if h and len(heads) <= most else (0, frozenset())


def _release_freed_memory() -> None:
    """Give the load's temporaries back to the system. glibc serves large allocations made after
    a large free from its heap rather than mmap (its threshold adapts), and keeps that heap when
    they are freed: without a trim, a 10 M entry load leaves ~5x the table resident."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim, or nothing we can do
        pass


class ListsWatch:
    """Lists that follow their files: a change builds a complete new Lists, used only if every
    file is good (manverify.reload.Watch, checked about once a second off the call path)."""

    def __init__(self, config: Mapping, base: Path = Path("."), *, background: bool = True):
        self._args = (copy.deepcopy(config), Path(base))  # the caller's later edits do not count
        self.lists = Lists.from_config(*self._args)
        self._watch = Watch(self.lists.files, self._build, self._apply, "screening lists", background=background)

    def _build(self) -> Lists:
        return Lists.from_config(*self._args)

    def _apply(self, new: Lists) -> None:
        self.lists = new  # one reference assignment: a call sees the old lists or the new ones

    def check(self) -> bool:
        """Reload now if a file changed (the ticker does it about once a second)."""
        return self._watch.check()

    def match(self, e164: str, partner: Optional[str], now: float) -> ListHits:
        return self.lists.match(e164, partner, now)

    @property
    def files(self) -> Tuple[Path, ...]:
        return self.lists.files

    @property
    def version(self) -> Dict[str, Any]:
        return self.lists.version

    def stats(self) -> Dict[str, Any]:
        w = self._watch
        return {**self.lists.stats(), "reloads": w.reloads, "failures": w.failures, "last_error": w.error}
