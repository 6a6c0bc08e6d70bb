"""Tables of canonical numbers (E.164 digits, no '+', as manverify.tn makes them) for the lists:
exact numbers in a hashed table, ranges and prefixes as interval tables.

Keys. A number of L digits (1..15) with value v has two integer encodings, both below 2**54:
  - `key` = L * 10**15 + v: numbers of one length are contiguous and ordered, so a range of
    numbers of the same length ("0162000000-0162999999") is one interval of keys;
  - `pkey` = v * 10**(15-L) * 16 + L (the digits padded to 15, then the length): every number
    starting with the digits P is inside one interval of pkeys, and no other number is (a shorter
    number whose padded digits equal P's sorts below P's own pkey), so a prefix is one interval.
Leading zeros survive both ("0162" and "162" differ by their length).

Exact numbers (`NumberTable`) are stored by a bijective mix of their key (an odd multiplier
mod 2**54) sorted, with a directory on the mix's top bits: a look-up reads one directory slot
and bisects a bucket of about 8 entries that sits in one or two cache lines, so it costs the
same at 10 M entries as at 1 k (a plain bisect over 10 M touches ~23 scattered cache lines).
With 4 M entries or more the directory takes 22 bits and each entry keeps only the 32 low bits
of its mix: 4 bytes a number, plus 4 for where it came from and, only if some entry expires, 4.
The same table answers a batch at once (`find_many`, numpy), for scrubbing call files.

Intervals (`Segments`) are cut at every start and end into disjoint segments, each knowing
the best entry of every group (list x scope) covering it, so overlapping and nested entries
cost one look-up, never a scan.
"""
from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np

MAX_DIGITS = 15
KEY_BITS = 54
_KEY_MASK = (1 << KEY_BITS) - 1
_MIX = 0x2545F4914F6CDD & _KEY_MASK | 1  # odd, so x -> x * _MIX mod 2**54 is a bijection

LBASE = tuple(length * 10 ** MAX_DIGITS for length in range(MAX_DIGITS + 1))
PAD16 = tuple(10 ** (MAX_DIGITS - length) * 16 for length in range(MAX_DIGITS + 1))

NEVER = 0  # expiry of an entry that does not expire
_NONE = range(0)


def key(digits: str) -> int:
    return LBASE[len(digits)] + int(digits)


def pkey(digits: str) -> int:
    return int(digits) * PAD16[len(digits)] + len(digits)


def prefix_interval(prefix: str) -> Tuple[int, int]:
    """The pkeys of every number starting with `prefix` (1..15 digits), inclusive."""
    p = len(prefix)
    v = int(prefix)
    return v * PAD16[p] + p, (v + 1) * PAD16[p] - 1


def range_interval(first: str, last: str) -> Tuple[int, int]:
    """The keys of the numbers of first's length from first to last, inclusive."""
    return key(first), key(last)


_STEP = 1 << 20  # elementwise work on 10 M entries goes a million at a time: no 80 MB temporaries


def mix_many(keys: np.ndarray, *, inplace: bool = False) -> np.ndarray:
    """The mix of each key (uint64): numpy wraps products mod 2**64, and 2**54 divides 2**64."""
    m = keys if inplace and keys.dtype == np.uint64 else keys.astype(np.uint64, copy=True)
    for a in range(0, len(m), _STEP):
        part = m[a:a + _STEP]
        part *= np.uint64(_MIX)
        part &= np.uint64(_KEY_MASK)
    return m


def stable_order(mixed: np.ndarray) -> np.ndarray:
    """np.argsort(mixed, kind="stable") for values below 2**54, at the cost of one np.sort of
    uint64 (argsort is 5-9x slower at 10 M) and one array of n words: sort (top bits, index)
    packed in one word, then reorder the few runs whose top bits tie."""
    n = len(mixed)
    ib = max(1, (n - 1).bit_length())
    tb = min(64 - ib, KEY_BITS)
    packed = np.arange(n, dtype=np.uint64)
    for a in range(0, n, _STEP):
        part = packed[a:a + _STEP]
        part |= (mixed[a:a + _STEP] >> np.uint64(KEY_BITS - tb)) << np.uint64(ib)
    packed.sort()
    ties = []
    if tb < KEY_BITS:
        for a in range(0, max(n - 1, 0), _STEP):
            b = min(a + _STEP, n - 1)
            ties.append(a + np.flatnonzero((packed[a + 1:b + 1] ^ packed[a:b]) < np.uint64(1 << ib)))
    packed &= np.uint64((1 << ib) - 1)
    order = packed.view(np.int64)  # indexes < 2**ib: the same words read as int64
    tie = np.concatenate(ties) if ties else np.zeros(0, np.intp)
    if len(tie):
        # Ties' runs are in ascending top bits, which the full value refines: sorting all
        # tied positions together by (value, index) keeps them in their runs.
        at = np.union1d(tie, tie + 1)
        sub = order[at]
        order[at] = sub[np.lexsort((sub, mixed[sub]))]
    return order


def _compact(a: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """a[keep] in a's own memory (a is not used afterwards): kept items move forward a chunk at
    a time, so writes never overtake reads."""
    w = 0
    for r in range(0, len(a), _STEP):
        part = a[r:r + _STEP][keep[r:r + _STEP]]
        a[w:w + len(part)] = part
        w += len(part)
    if a.base is None and a.flags.owndata:
        a.resize(w, refcheck=False)
        return a
    return a[:w].copy()


class NumberTable:
    """Exact numbers, each with its origin (uint32, the caller's entry id) and, when given, its
    expiry (uint32 Unix seconds, NEVER for none). Several entries may share a number (a number in
    two lists): they are adjacent, in the order the caller's `rank` sorted them."""

    __slots__ = ("size", "_shift", "_rmask", "_dir", "_res", "origin", "expiry",
                 "_dir_v", "_res_v", "_origin_v", "_expiry_v")

    COMPACT_FROM = 1 << 22  # from here a 22-bit directory (16 MB) costs less than 4 bytes a number

    def __init__(self, mixed: np.ndarray, origin: Optional[np.ndarray], expiry: Optional[np.ndarray]):
        """`mixed` sorted ascending (see build())."""
        n = len(mixed)
        bits = max(1, (n // 8).bit_length())
        if n >= self.COMPACT_FROM:
            bits = max(bits, KEY_BITS - 32)  # residues fit 32 bits: 4 bytes a number, not 8
        bits = min(bits, 26)
        self.size = n
        self._shift = KEY_BITS - bits
        self._rmask = (1 << self._shift) - 1
        self._dir = np.empty((1 << bits) + 1, dtype=np.uint32)
        for a in range(0, len(self._dir), _STEP):
            starts = np.arange(a, min(a + _STEP, len(self._dir)), dtype=np.uint64) << np.uint64(self._shift)
            self._dir[a:a + len(starts)] = np.searchsorted(mixed, starts)
        self._res = np.empty(n, dtype=np.uint32 if self._shift <= 32 else np.uint64)
        for a in range(0, n, _STEP):
            self._res[a:a + _STEP] = mixed[a:a + _STEP] & np.uint64(self._rmask)
        self.origin = None if origin is None else origin.astype(np.uint32, copy=False)
        self.expiry = None if expiry is None else expiry.astype(np.uint32, copy=False)
        # bisect() on a memoryview reads numpy's memory directly; on a numpy array it would box
        # every probe as a numpy scalar, ten times slower.
        self._dir_v = memoryview(self._dir)
        self._res_v = memoryview(self._res)
        self._origin_v = None if self.origin is None else memoryview(self.origin)
        self._expiry_v = None if self.expiry is None else memoryview(self.expiry)

    @classmethod
    def build(cls, keys: np.ndarray, origin: Optional[np.ndarray] = None, expiry: Optional[np.ndarray] = None,
              group: Optional[np.ndarray] = None, *, consume: bool = False) -> "NumberTable":
        """From unsorted entries, each group's entries together. Entries with the same key and
        group are one: the one that never expires, else the one that expires last, else the
        first (lowest origin). consume=True lets build() reuse keys' memory (10 M entries:
        80 MB less at the peak); the caller must not use keys afterwards. Without origin (a
        set of numbers, e.g. an opposition file to scrub against), 4-5 bytes a number."""
        mixed = mix_many(keys, inplace=consume)
        del keys
        if origin is None:
            mixed.sort()
            if len(mixed) > 1:
                keep = np.empty(len(mixed), dtype=bool)
                keep[0] = True
                np.not_equal(mixed[1:], mixed[:-1], out=keep[1:])
                mixed = _compact(mixed, keep)
            return cls(mixed, None, None)
        if expiry is None:
            # A stable order keeps each group's entries together among equal mixes; the lowest
            # origin of each run is taken below (one sort key, not two: 10 M entries).
            order = stable_order(mixed)
            mixed.sort()  # the same values as mixed[order], without a second array
        else:
            # NEVER sorts first, then the latest expiry.
            lasting = np.where(expiry == NEVER, np.uint32(0), np.uint32(0xFFFFFFFF) - expiry)
            order = np.lexsort((origin, lasting, mixed) if group is None else (origin, lasting, group, mixed))
            del lasting
            mixed = mixed[order]
            expiry = expiry[order]
        origin = origin[order]
        if group is not None:
            group = group[order]
        del order
        if len(mixed) > 1:
            keep = np.empty(len(mixed), dtype=bool)
            keep[0] = True
            np.not_equal(mixed[1:], mixed[:-1], out=keep[1:])
            if group is not None:
                keep[1:] |= group[1:] != group[:-1]
            if not keep.all():
                if expiry is None:
                    origin = np.minimum.reduceat(origin, np.flatnonzero(keep))
                else:  # sorted by origin within each run already, after expiry
                    origin = origin[keep]
                    expiry = expiry[keep]
                mixed = _compact(mixed, keep)
        if expiry is not None and not expiry.any():
            expiry = None
        return cls(mixed, origin, expiry)

    def find(self, k: int) -> range:
        """Indexes of the entries whose key is k (empty range when none)."""
        m = (k * _MIX) & _KEY_MASK
        b = m >> self._shift
        lo = self._dir_v[b]
        hi = self._dir_v[b + 1]
        if lo == hi:
            return _NONE
        r = m & self._rmask
        res = self._res_v
        i = bisect_left(res, r, lo, hi)
        if i == hi or res[i] != r:
            return _NONE
        j = i + 1
        while j < hi and res[j] == r:
            j += 1
        return range(i, j)

    def find_many(self, keys: np.ndarray) -> np.ndarray:
        """For each key, the index of its first entry, or -1 (numpy, for whole files at once)."""
        m = mix_many(keys)
        b = (m >> np.uint64(self._shift)).astype(np.intp)
        r = (m & np.uint64(self._rmask)).astype(self._res.dtype)
        del m
        lo = self._dir[b].astype(np.intp)
        end = self._dir[b + 1].astype(np.intp)
        hi = end.copy()
        active = np.flatnonzero(lo < hi)
        while len(active):  # a binary search per key, all keys in step
            mid = (lo[active] + hi[active]) >> 1
            below = self._res[mid] < r[active]
            lo[active] = np.where(below, mid + 1, lo[active])
            hi[active] = np.where(below, hi[active], mid)
            active = active[lo[active] < hi[active]]
        found = lo < end
        found[found] = self._res[lo[found]] == r[found]
        return np.where(found, lo, -1)

    def nbytes(self) -> int:
        return self._dir.nbytes + self._res.nbytes + (0 if self.origin is None else self.origin.nbytes) + (
            0 if self.expiry is None else self.expiry.nbytes)


class Segments:
    """Intervals of keys, each an entry of some group, cut into disjoint segments. A segment lists,
    for every group with an entry covering it, the best such entry by the caller's rank (smaller
    is better): so when the best entry of a group is expired, every other one of that group
    there is too, provided rank puts never-expiring entries first and then the latest expiry."""

    __slots__ = ("_starts", "_top", "_ptr", "_cover", "_starts_v", "_top_v", "_ptr_v", "_cover_v", "_two_level")

    _STRIDE = 64  # a look-up bisects every 64th start (small, cached), then 64 starts (a few lines)

    def __init__(self, intervals: Iterable[Tuple[int, int, int, tuple, int]]):
        """intervals: (lo, hi inclusive, group, rank, entry id)."""
        items = sorted(intervals)
        points = sorted({i[0] for i in items} | {i[1] + 1 for i in items})
        starts: List[int] = []
        ptr: List[int] = [0]
        cover: List[int] = []
        heaps: dict = {}
        last: Optional[Tuple[int, ...]] = None
        j = 0
        for p in points:
            while j < len(items) and items[j][0] <= p:
                lo, hi, group, rank, entry = items[j]
                heapq.heappush(heaps.setdefault(group, []), (rank, entry, hi))
                j += 1
            here = []
            for group in sorted(heaps):
                h = heaps[group]
                while h and h[0][2] < p:
                    heapq.heappop(h)
                if h:
                    here.append(h[0][1])
                else:
                    del heaps[group]
            now = tuple(here)
            if now == last:
                continue
            starts.append(p)
            cover.extend(now)
            ptr.append(len(cover))
            last = now
        self._starts = np.array(starts, dtype=np.uint64)
        self._top = np.ascontiguousarray(self._starts[:: self._STRIDE])
        self._ptr = np.array(ptr, dtype=np.uint32)
        self._cover = np.array(cover, dtype=np.uint32)
        self._two_level = len(self._top) > 1
        self._starts_v, self._top_v = memoryview(self._starts), memoryview(self._top)
        self._ptr_v, self._cover_v = memoryview(self._ptr), memoryview(self._cover)

    def __len__(self) -> int:
        return len(self._starts)

    def find(self, k: int) -> Sequence[int]:
        """The entry ids covering key k, at most one per group."""
        if self._two_level:
            t = bisect_right(self._top_v, k) - 1
            if t < 0:
                return ()
            lo = t * self._STRIDE
            s = bisect_right(self._starts_v, k, lo, min(lo + self._STRIDE, len(self._starts_v))) - 1
        else:
            s = bisect_right(self._starts_v, k) - 1
            if s < 0:
                return ()
        a = self._ptr_v[s]
        b = self._ptr_v[s + 1]
        return self._cover_v[a:b] if a != b else ()

    def nbytes(self) -> int:
        return self._starts.nbytes + self._top.nbytes + self._ptr.nbytes + self._cover.nbytes
