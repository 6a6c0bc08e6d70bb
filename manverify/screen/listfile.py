"""Reading one list file (block, allow, DNO, opposition): what each line says, with its line number.

Format (UTF-8, one entry a line; blank lines and everything from '#' on are ignored):

    0612345678                      a number, in any form manverify.tn.canonical reads:
    +33 6 12 34 56 78                 national, +33, 0033, canonical digits, with spaces, dots...
    0590123456                        overseas national numbers get their own country code (590...)
    0162*                           a prefix: every number starting with these digits
    0162000000-0162999999           a range: the numbers of that length from the first to the last
    0612345678  expires=2027-01-31  any entry may end with an expiry: an ISO 8601 date (the entry
    0162*  expires=2027-01-31T18:00:00+01:00   stops matching at 00:00 UTC that day) or date and time
                                      (with an offset or Z; none means UTC)

A national prefix shorter than four digits also covers the overseas numbers it names ("06*"
covers 0690 -> 590690...); a range needs two ends of the same length (a number with dashes in it,
"06-12-34-56-78", is a number). Numbers with '*' or '#' (service codes) are not list entries.

Lines that are only a number in a compact form (0612345678, 33612345678, +33612345678, CR LF or
LF) are read by numpy a few MB at a time; every other line goes through tn.canonical, and both give
the same digits (tests/test_screen_lists.py holds them to it).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import re
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, List, NamedTuple, Optional, Tuple

import numpy as np

from .. import tn
from ..errors import InvalidNumber
from ..tn import _OVERSEAS  # the one table of overseas national prefixes, shared with canonical()
from .numtable import LBASE, MAX_DIGITS, NEVER

CHUNK = 4 << 20
MAX_ERRORS = 5  # kept with their line numbers; the rest are counted

_SEPARATORS = re.compile(r"[\s\-.()/\[\]]")
_EXPIRY = re.compile(r"\s+expires=(\S*)\s*\Z")
_SPACED_DASH = re.compile(r"\s+-\s*|\s*-\s+")
_DIGITS = re.compile(r"[0-9]+\Z")

_CC = np.full(1000, 33, dtype=np.uint64)  # country code of a national number by its 3 digits after 0
for _prefix, _code in _OVERSEAS.items():
    _CC[int(_prefix)] = int(_code)


class BadLine(ValueError):
    """A line that is no entry; its message says why."""


class Entry(NamedTuple):
    kind: str  # "number", "prefix" or "range"
    digits: Tuple[str, ...]  # the number; the prefixes; the range's first and last
    expiry: int  # Unix seconds, NEVER for none


class ListFile(NamedTuple):
    """What one file holds. Numbers as table keys (numtable.key) with their line numbers."""

    path: Path
    keys: np.ndarray  # uint64
    lines: np.ndarray  # uint32, the line of each key
    expiry: Optional[np.ndarray]  # uint32 per key, None when no number expires
    prefixes: List[Tuple[int, Tuple[str, ...], int]]  # (line, canonical prefixes, expiry)
    ranges: List[Tuple[int, str, str, int]]  # (line, first, last, expiry)
    errors: List[Tuple[int, str]]  # (line, why), the first MAX_ERRORS
    error_count: int
    line_count: int
    digest: bytes


_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
                  r"(?:T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})?)?\Z")


def parse_expiry(text: str) -> int:
    """Unix seconds of `expires=` text: YYYY-MM-DD (00:00 UTC), or with THH:MM[:SS[.ffffff]] and
    an optional Z or +HH:MM / -HH:MM (none: UTC). One syntax on every Python version."""
    if not _ISO.match(text):
        raise BadLine(f"expires={text!r} is not an ISO 8601 date or date and time")
    try:
        if len(text) == 10:
            d = _dt.date.fromisoformat(text)
            when = _dt.datetime(d.year, d.month, d.day, tzinfo=_dt.timezone.utc)
        else:
            when = _dt.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" and text else text)
            if when.tzinfo is None:
                when = when.replace(tzinfo=_dt.timezone.utc)
    except ValueError:
        raise BadLine(f"expires={text!r} is not an ISO 8601 date or date and time") from None
    seconds = int(when.timestamp())
    if not 0 < seconds < 1 << 32:
        raise BadLine(f"expires={text!r} is out of range (1970 to 2106)")
    return seconds


def _number(text: str) -> str:
    try:
        digits = tn.canonical(text)
    except InvalidNumber as e:
        raise BadLine(str(e)) from None
    if not _DIGITS.match(digits):
        raise BadLine(f"not a telephone number of digits only: {text[:64]!r}")
    return digits


def national_prefixes(digits: str) -> Tuple[str, ...]:
    """The canonical prefixes of the national numbers 0<digits>...: as tn maps them (an overseas
    number gets its country code); under four digits, every overseas prefix it names too."""
    if len(digits) >= 3:
        return ((_OVERSEAS.get(digits[:3], "33") + digits),)
    return ("33" + digits,) + tuple(sorted(cc + p for p, cc in _OVERSEAS.items() if p.startswith(digits)))


def _prefix(text: str) -> Tuple[str, ...]:
    t = _SEPARATORS.sub("", text)
    if t.startswith("+") or t.startswith("00"):
        d = t[1:] if t.startswith("+") else t[2:]
        if not _DIGITS.match(d) or d[0] == "0":
            raise BadLine(f"an international prefix is digits after + or 00, not starting with 0: {text[:64]!r}")
        out: Tuple[str, ...] = (d,)
    elif t.startswith("0"):
        if not (_DIGITS.match(t) or t == "0") or len(t) > 10:
            raise BadLine(f"a national prefix is 0 and at most 9 digits: {text[:64]!r}")
        out = national_prefixes(t[1:])
    elif _DIGITS.match(t):
        out = (t,)
    else:
        raise BadLine(f"a prefix is digits before '*': {text[:64]!r}")
    if any(len(p) > MAX_DIGITS for p in out):
        raise BadLine(f"a prefix longer than {MAX_DIGITS} digits: {text[:64]!r}")
    return out


def _range(first: str, last: str) -> Tuple[str, str]:
    a, b = _number(first), _number(last)
    if len(a) != len(b):
        raise BadLine(f"a range's ends have different lengths ({a} and {b})")
    if int(a) > int(b):
        raise BadLine(f"a range's first number is after its last ({a} > {b})")
    return a, b


def parse_line(text: str) -> Optional[Entry]:
    """The entry a line holds, None for a blank or comment line, BadLine for anything else."""
    text = text.split("#", 1)[0].strip()
    if not text:
        return None
    expiry = NEVER
    m = _EXPIRY.search(text)
    if m:
        expiry = parse_expiry(m.group(1))
        text = text[: m.start()]
    if text.endswith("*"):
        return Entry("prefix", _prefix(text[:-1]), expiry)
    parts = _SPACED_DASH.split(text)
    if len(parts) == 1 and text.count("-") == 1:
        parts = text.split("-")
    if len(parts) == 2:
        try:
            return Entry("range", _range(*parts), expiry)
        except BadLine as e:
            try:  # "0612-345678": a number with one dash
                return Entry("number", (_number(text),), expiry)
            except BadLine:
                raise e from None
    if len(parts) > 2 and _SPACED_DASH.search(text):
        raise BadLine(f"a range is two numbers around one '-': {text[:64]!r}")
    return Entry("number", (_number(text),), expiry)


def _digits_value(d: np.ndarray, pos: np.ndarray, n: int) -> np.ndarray:
    v = np.zeros(len(pos), dtype=np.uint64)
    for c in range(n):
        v *= np.uint64(10)
        v += d[pos + c]
    return v


def numbers_in_chunk(chunk: bytes) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The vectorised reader of number files: the lists' loader's and scrub's.

    chunk: whole lines, the last ending with b'\\n'. Returns (keys, their line indexes in the
    chunk, indexes of the lines left for parse_line, their starts, their ends)."""
    a = np.frombuffer(chunk, dtype=np.uint8)
    ends = np.flatnonzero(a == 10)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    ends -= (ends > starts) & (a[ends - 1] == 13)  # CR LF
    length = ends - starts
    d = a - np.uint8(48)  # wraps below '0': every non-digit is > 9
    # Non-digits other than line ends are few in a list of numbers (a '+', a CR): count each
    # line's from their positions (a running count over every byte costs 5x more).
    other = np.flatnonzero((d > 9) & (a != 10))
    line_of = np.searchsorted(ends, other)  # a CR at a line's end counts: ends were moved onto it
    nondig = np.bincount(line_of[other != ends[line_of]], minlength=len(ends))
    del other, line_of
    first = a[starts]
    second = a[np.minimum(starts + 1, len(a) - 1)]
    digits_only = nondig == 0
    canon = digits_only & (length >= 1) & (length <= MAX_DIGITS) & (first != 48)
    national = digits_only & (length == 10) & (first == 48) & (second != 48)
    plus = (first == 43) & (nondig == 1) & (length >= 2) & (length <= MAX_DIGITS + 1) & (second != 48)
    blank = length == 0
    keys, where = [], []
    for sel, skip in ((canon, 0), (plus, 1)):
        idx = np.flatnonzero(sel)
        n = length[idx] - skip
        for size in np.flatnonzero(np.bincount(n, minlength=MAX_DIGITS + 2)):
            i = idx[n == size]
            keys.append(_digits_value(d, starts[i] + skip, int(size)) + np.uint64(LBASE[size]))
            where.append(i)
    idx = np.flatnonzero(national)
    if len(idx):
        v9 = _digits_value(d, starts[idx] + 1, 9)
        cc = _CC[(v9 // np.uint64(10 ** 6)).astype(np.intp)]
        size = np.where(cc < 100, 11, 12).astype(np.uint64)
        keys.append(size * np.uint64(10 ** MAX_DIGITS) + cc * np.uint64(10 ** 9) + v9)
        where.append(idx)
    slow = np.flatnonzero(~(canon | national | plus | blank))
    if keys:
        return np.concatenate(keys), np.concatenate(where), slow, starts[slow], ends[slow]
    return np.zeros(0, np.uint64), np.zeros(0, np.intp), slow, starts[slow], ends[slow]


def chunks(f: BinaryIO, size: int, seen: Optional[Callable[[bytes], Any]] = None
           ) -> Iterator[Tuple[bytes, int, int]]:
    """A number file's whole lines, about `size` bytes at a time: (chunk, the number of its first
    line, its number of lines). A UTF-8 BOM is dropped and a last line without its line end is
    given one; `seen` gets every block as read (the list's digest). The lists' loader and scrub
    read files this way."""
    rest, first, line_base = b"", True, 1
    while True:
        block = f.read(size)
        if seen is not None:
            seen(block)
        if first:
            first = False
            if block.startswith(b"\xef\xbb\xbf"):
                block = block[3:]
        data = rest + block
        if block:
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                rest = data
                continue
            chunk, rest = data[:cut], data[cut:]
        elif data:
            chunk, rest = data + b"\n", b""
        else:
            return
        n_lines = chunk.count(b"\n")
        yield chunk, line_base, n_lines
        line_base += n_lines


def read(path: Path) -> ListFile:
    """Read a list file (OSError when it cannot be read; bad lines are in .errors)."""
    size = Path(path).stat().st_size
    buffers = _Growing(size // 10 + 1024)
    slow_keys: List[int] = []
    slow_lines: List[int] = []
    slow_expiry: List[int] = []
    prefixes: list = []
    ranges: list = []
    errors: List[Tuple[int, str]] = []
    error_count = 0
    digest = hashlib.blake2b(digest_size=8)
    line_count = 0
    with open(path, "rb") as f:
        for chunk, line_base, n_lines in chunks(f, CHUNK, digest.update):
            k, at, slow, s_starts, s_ends = numbers_in_chunk(chunk)
            buffers.add(k, at + line_base)
            for i, s, e in zip(slow.tolist(), s_starts.tolist(), s_ends.tolist()):
                line = line_base + i
                try:
                    entry = parse_line(chunk[s:e].decode("utf-8"))
                except UnicodeDecodeError:
                    entry, why = None, "not UTF-8 text"
                except BadLine as bad:
                    entry, why = None, str(bad)
                else:
                    why = ""
                if why:
                    error_count += 1
                    if len(errors) < MAX_ERRORS:
                        errors.append((line, why))
                elif entry is None:
                    continue
                elif entry.kind == "number":
                    slow_keys.append(LBASE[len(entry.digits[0])] + int(entry.digits[0]))
                    slow_lines.append(line)
                    slow_expiry.append(entry.expiry)
                elif entry.kind == "prefix":
                    prefixes.append((line, entry.digits, entry.expiry))
                else:
                    ranges.append((line, entry.digits[0], entry.digits[1], entry.expiry))
            line_count = line_base + n_lines - 1
    buffers.add(np.array(slow_keys, dtype=np.uint64), np.array(slow_lines, dtype=np.uint32))
    all_keys, all_lines = buffers.done()
    expiry = None
    if any(slow_expiry):
        expiry = np.zeros(len(all_keys), dtype=np.uint32)
        expiry[len(all_keys) - len(slow_expiry):] = slow_expiry
    return ListFile(Path(path), all_keys, all_lines, expiry, prefixes, ranges, errors,
                    error_count, line_count, digest.digest())


class _Growing:
    """Keys and their lines appended chunk by chunk into arrays sized from the file, so a 10 M
    number file is not held twice (chunks, then their concatenation)."""

    def __init__(self, capacity: int):
        self.keys = np.empty(capacity, dtype=np.uint64)
        self.lines = np.empty(capacity, dtype=np.uint32)
        self.n = 0

    def add(self, keys: np.ndarray, lines: np.ndarray) -> None:
        end = self.n + len(keys)
        if end > len(self.keys):
            capacity = max(end, 2 * len(self.keys))
            self.keys = np.concatenate([self.keys[:self.n], np.empty(capacity - self.n, np.uint64)])
            self.lines = np.concatenate([self.lines[:self.n], np.empty(capacity - self.n, np.uint32)])
        self.keys[self.n:end] = keys
        self.lines[self.n:end] = lines
        self.n = end

    def done(self) -> Tuple[np.ndarray, np.ndarray]:
        for a in (self.keys, self.lines):
            a.resize(self.n, refcheck=False)  # in place: realloc gives the tail back
        return self.keys, self.lines
