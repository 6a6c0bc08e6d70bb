"""Scrubbing call centres' files: a CSV of contacts in, the rows that may be called out.

    manverify scrub contacts.csv --opposition bloctel.txt red-list.txt [--column NAME] [-o OUT]
                    [--summary FILE] [--customer ID --config F] [--keep-duplicates]

The output is the input's own lines (header, every column, quoting, line ends, encoding) minus the
rows removed; a row is removed, in this order, when its number is
  - on an opposition file (`opposition`, counted per file, the first file named wins): the list
    syntax of manverify.screen.listfile, so prefixes `0162*`, ranges and `expires=` work (an
    expired entry no longer opposes);
  - refused by the customer's own rules (`--customer` with `--config`, Screen.outbound_status):
    its opposition or red lists, a refusal within 60 days, the repeat limit;
  - a duplicate: the same number as a row already written (the first row wins; a second row
    would make the centre call the same person twice, counting twice toward canvass.repeat).
    `--keep-duplicates` writes them all.
A bad row (no number, not a number, a number too short to be a subscriber's, or not as many
fields as the header) is not written either: it is reported with its line number on stderr and in
the summary, and the exit code is 1 (as `verify --batch` does for bad lines); 2 is a usage or
configuration error (an opposition file that cannot be read, or a bad line in it: file:line).

Numbers in any form tn.canonical reads. "+33 (0)6 12 34 56 78" is read without its "(0)" (the
national trunk 0 written after the country code), and a number that still reads +33 0... is bad:
no French number is dialled so, and read as canonical digits it would match no list. Digits
without a leading 0 or an international mark and fewer than 10 of them ("612345678") are bad too:
usually a national number whose 0 a spreadsheet dropped, which read as E.164 would be some other
country's number and pass every French list.

Scale (benches/scrub_bench.py, 10 M opposition numbers, 1 M contacts, medians of 3 runs on this
machine's 2 cores, shared with other work, numpy 2.4): 3.5 s wall (3.3 s CPU), 176 MB peak resident;
a plain Python set doing the same job in the same run: 22.8 s (21.1 s CPU), 937 MB: 6.6x. Under a
heavier load (load average 5): 7.4 s (4.2 s CPU) against 38.6 s, 5.2x. Choices, measured:
  - Opposition files are read a megabyte at a time by the lists' numpy reader (listfile.numbers_in_chunk,
    which yields the same keys as numtable.key) into one uint64 array per file, grown in place, then
    sorted in place (np.sort: 0.45 s at 10 M): 8 bytes a number and no other array of that size.
    NumberTable (4-5 bytes a number) looks 1 M keys up faster (find_many 0.35 s against 0.9 s for
    np.searchsorted), but its build holds the keys, their mix and the table at once (255 MB peak
    at 10 M, over the 200 MB budget) and takes 1.1 s against the sort's 0.45 s: even in time,
    over budget in memory. np.isin sorts both sides on every call (25 s). Streaming the
    opposition file past the contacts held in memory (the other way round) makes 10 M searches
    instead of 1 M: 5.7-7.7 s in all against 3.8-5.0 s.
  - Contacts are read with the csv module (delimiter `,`, `;` or tab, from the header line), a
    chunk of CHUNK_ROWS records at a time by list.extend (no Python step per row); each chunk's
    numbers are joined into one text, separators dropped by bytes.translate, and read by the same
    numpy reader; only what it does not take (URIs, "(0)", other spaces) goes through
    tn.canonical one by one. Each chunk's keys are sorted, so np.searchsorted walks the opposition
    array in order, and duplicates are found against a sorted array of the numbers written.
"""
from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import operator
import os
import re
import sys
import tempfile
import time
import unicodedata
from array import array
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .. import tn
from ..errors import InvalidNumber, UsageError
from . import batch, listfile
from .listfile import BadLine
from .numtable import MAX_DIGITS, NEVER, PAD16, key, prefix_interval, range_interval

CHUNK_ROWS = 1 << 15
READ_CHUNK = 1 << 20  # bytes of an opposition file per numpy pass: its temporaries are ~9x this
COLUMNS = ("number", "phone", "telephone", "numero", "tel")  # the default column, by folded name
DELIMITERS = (",", ";", "\t")
MAX_REPORTED = 5  # bad lines of an opposition file named in the error
SHOWN = 20  # bad rows shown on stderr; the summary has every one
FIRST = 1000  # bad rows kept with their reason in the summary; every line number is kept

_TEN15 = np.uint64(10 ** MAX_DIGITS)
_PAD16 = np.array(PAD16, dtype=np.uint64)
_POW10 = np.array([10 ** i for i in range(MAX_DIGITS + 1)], dtype=np.uint64)
_SEPARATORS = b" \t.-/[]"  # what tn drops, but '(' and ')': "(0)" is read one by one
_TRUNK = re.compile(r"^(\s*(?:\+|00)[\s.\-]*[1-9][0-9]{0,2})[\s.\-]*\(0\)")
_INTERNATIONAL = re.compile(r"[\s\-.()/\[\]]*(?:\+|0[\s\-.()/\[\]]*0)")  # + or 00, separators aside
MIN_DIGITS, MIN_BARE = 7, 10

# why a row is not written, in the summary's order
CALLABLE, OPPOSITION, CUSTOMER, DUPLICATE, BAD, BLANK = range(6)


# ---------------------------------------------------------------------- opposition files
class Opposition(NamedTuple):
    """One opposition file: its numbers as sorted numtable keys, its ranges (keys) and prefixes
    (pkeys) as sorted disjoint intervals (starts, ends inclusive)."""

    path: str
    keys: np.ndarray
    ranges: Tuple[np.ndarray, np.ndarray]
    prefixes: Tuple[np.ndarray, np.ndarray]
    counts: Dict[str, int]  # numbers, prefixes, ranges, expired, lines

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """Which of `keys` (sorted, for locality) the file opposes."""
        hit = _member(self.keys, keys)
        if len(self.ranges[0]):
            hit |= _inside(keys, *self.ranges)
        if len(self.prefixes[0]):
            hit |= _inside(pkeys(keys), *self.prefixes)
        return hit


def _member(table: np.ndarray, keys: np.ndarray) -> np.ndarray:
    if not len(table):
        return np.zeros(len(keys), dtype=bool)
    j = np.searchsorted(table, keys)
    j[j == len(table)] = len(table) - 1
    return table[j] == keys


def _inside(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    i = np.searchsorted(starts, values, side="right") - 1
    return (i >= 0) & (values <= ends[np.maximum(i, 0)])


def _merged(intervals: List[Tuple[int, int]]) -> Tuple[np.ndarray, np.ndarray]:
    out: List[List[int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return (np.array([a for a, _ in out], dtype=np.uint64), np.array([b for _, b in out], dtype=np.uint64))


def pkeys(keys: np.ndarray) -> np.ndarray:
    """numtable.pkey of each key (the encoding prefixes are intervals of)."""
    length = keys // _TEN15
    return (keys % _TEN15) * _PAD16[length.astype(np.intp)] + length


def load_opposition(path: "str | os.PathLike", now: Optional[float] = None) -> Opposition:
    """Read an opposition file (list syntax: listfile). UsageError naming the file when it cannot
    be read, and file:line of its first bad lines."""
    now = time.time() if now is None else now
    try:
        size = os.stat(path).st_size
        f = open(path, "rb")
    except OSError as e:
        raise UsageError(f"cannot read opposition file {path}: {e.strerror or e}") from None
    keys = np.empty(size // 11 + 1024, dtype=np.uint64)  # "0612345678\n": grown if lines are shorter
    n = 0
    slow: List[int] = []
    ranges: List[Tuple[int, int]] = []
    prefixes: List[Tuple[int, int]] = []
    counts = {"numbers": 0, "prefixes": 0, "ranges": 0, "expired": 0, "lines": 0}
    errors: List[str] = []
    bad = 0
    line_count = 0
    with f:
        try:
            for chunk, line_base, n_lines in listfile.chunks(f, READ_CHUNK):
                k, _, lines, starts, ends = listfile.numbers_in_chunk(chunk)
                if n + len(k) > len(keys):
                    keys.resize(max(n + len(k), len(keys) + len(keys) // 4), refcheck=False)  # realloc: no copy held
                keys[n:n + len(k)] = k
                n += len(k)
                for i, s, e in zip(lines.tolist(), starts.tolist(), ends.tolist()):
                    try:
                        entry = listfile.parse_line(chunk[s:e].decode("utf-8"))
                    except (UnicodeDecodeError, BadLine) as why:
                        bad += 1
                        if len(errors) < MAX_REPORTED:
                            text = "not UTF-8 text" if isinstance(why, UnicodeDecodeError) else str(why)
                            errors.append(f"{path}:{line_base + i}: {text}")
                        continue
                    if entry is None:
                        continue
                    if entry.expiry != NEVER and entry.expiry <= now:
                        counts["expired"] += 1
                    elif entry.kind == "number":
                        slow.append(key(entry.digits[0]))
                    elif entry.kind == "range":
                        ranges.append(range_interval(*entry.digits))
                        counts["ranges"] += 1
                    else:
                        prefixes.extend(prefix_interval(p) for p in entry.digits)
                        counts["prefixes"] += 1
                line_count = line_base + n_lines - 1
        except OSError as e:
            raise UsageError(f"cannot read opposition file {path}: {e.strerror or e}") from None
    if errors:
        more = f" (and {bad - len(errors)} more bad lines)" if bad > len(errors) else ""
        raise UsageError("bad opposition file: " + "; ".join(errors) + more)
    keys.resize(n + len(slow), refcheck=False)
    keys[n:] = slow
    keys.sort()
    counts["numbers"] = len(keys)
    counts["lines"] = line_count
    return Opposition(str(path), keys, _merged(ranges), _merged(prefixes), counts)


# ---------------------------------------------------------------------- contacts' numbers
def number_keys(texts: Sequence[str]) -> Tuple[np.ndarray, List[Tuple[int, str]]]:
    """numtable keys of the numbers in `texts` (0 for a bad one) and the bad ones' (index, why)."""
    n = len(texts)
    keys = np.zeros(n, dtype=np.uint64)
    if not n:
        return keys, []
    joined = "\n".join(texts)
    if joined.count("\n") != n - 1 or "\r" in joined:  # a field with a line break of its own
        fixed = list(texts)
        for i, t in enumerate(texts):
            if "\n" in t or "\r" in t:
                fixed[i] = "x"  # sent to the slow path below, which reads texts[i]
        joined = "\n".join(fixed)
    data = joined.encode("utf-8", "surrogateescape").translate(None, _SEPARATORS) + b"\n"
    k, where, slow, _, _ = listfile.numbers_in_chunk(data)
    keys[where] = k
    bad: List[Tuple[int, str]] = []
    for i in slow.tolist():
        text = texts[i]
        try:
            digits = tn.canonical(_TRUNK.sub(r"\1", text))
        except InvalidNumber as e:
            bad.append((i, str(e)))
            continue
        if not digits.isdigit():
            bad.append((i, f"not a telephone number of digits only: {text[:64]!r}"))
            continue
        keys[i] = key(digits)
    empty = np.flatnonzero(keys == 0)
    if len(empty):
        failed = {i for i, _ in bad}
        bad.extend((i, "no number") for i in empty.tolist() if i not in failed)
    bad.extend(_implausible(keys, texts))
    for i, _ in bad:
        keys[i] = 0
    return keys, bad


def _implausible(keys: np.ndarray, texts: Sequence[str]) -> List[Tuple[int, str]]:
    """Numbers tn reads but no one can be called on (see the module docstring)."""
    length = keys // _TEN15
    value = keys % _TEN15
    short = np.flatnonzero((keys != 0) & (length < MIN_BARE))
    out = []
    for i in short.tolist():
        size = int(length[i])
        if size < MIN_DIGITS:
            out.append((i, f"too short for a subscriber's number ({size} digits): {texts[i][:64]!r}"))
        elif not _INTERNATIONAL.match(texts[i]):
            out.append((i, f"{size} digits without a leading 0 or +: a national number missing its 0? "
                           f"{texts[i][:64]!r}"))
    lead = _POW10[np.maximum(length - 1, 0).astype(np.intp)]  # the smallest number of that length
    zero = np.flatnonzero((keys != 0) & (length >= MIN_BARE) & (value < lead))
    out.extend((i, f"neither a national number (0 and 9 digits) nor an international one: {texts[i][:64]!r}")
               for i in zero.tolist())
    head = length >= 4
    trunk = np.flatnonzero(head & (value // _POW10[np.where(head, length - 3, 0).astype(np.intp)] == 330))
    out.extend((i, f"+33 followed by 0 (dial +33 6..., not +33 06...): {texts[i][:64]!r}") for i in trunk.tolist())
    return out


def digits_of(key: int) -> str:
    length, value = divmod(int(key), 10 ** MAX_DIGITS)
    return str(value).zfill(length)


# ---------------------------------------------------------------------- the CSV
def fold(name: str) -> str:
    """A column name as matched: lower case, accents and outer spaces dropped (Téléphone = telephone).
    A name that is not UTF-8 (read with surrogateescape) is read as Windows-1252, what French
    spreadsheets write."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        name = name.encode("utf-8", "surrogateescape").decode("cp1252", "replace")
    decomposed = unicodedata.normalize("NFKD", name.strip().lstrip("\ufeff"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def choose_column(header: Sequence[str], wanted: Optional[str]) -> int:
    folded = [fold(h) for h in header]
    if wanted is not None:
        if fold(wanted) in folded:
            return folded.index(fold(wanted))
        raise UsageError(f"--column {wanted!r}: no such column; the header has {list(header)}")
    for name in COLUMNS:
        if name in folded:
            return folded.index(name)
    for i, f in enumerate(folded):  # "Phone number", "tel_mobile"
        if set(re.split(r"[^a-z0-9]+", f)) & set(COLUMNS):
            return i
    raise UsageError(f"no number column (one named {', '.join(COLUMNS)}) in the header {list(header)}; "
                     "name it with --column")


def sniff(line: str) -> str:
    """The delimiter that cuts the header line into the most fields (',' on a tie)."""
    return max(DELIMITERS, key=lambda d: len(next(csv.reader([line], delimiter=d), [])))


# ---------------------------------------------------------------------- the run
# canonical numbers -> for each, None (callable) or why not; one call a chunk (one exchange with
# a shared counters' store)
Status = Callable[[List[str]], List[Optional[str]]]


class Summary(NamedTuple):
    rows: int  # data rows read (header and blank lines apart)
    written: int
    opposition: Mapping[str, int]  # per file, rows removed
    customer: Mapping[str, int]  # per reason, rows removed by the customer's rules
    duplicates: int
    bad: int
    bad_lines: Tuple[int, ...]
    first_bad: Tuple[Tuple[int, str], ...]  # (line, why), the first FIRST
    bad_reasons: Mapping[str, int]
    blank_lines: int
    column: str
    delimiter: str
    files: Mapping[str, Mapping[str, int]]  # per opposition file: numbers, prefixes, ranges, expired, lines

    def to_dict(self) -> Dict[str, Any]:
        return {
            "rows": self.rows, "written": self.written,
            "removed": {"opposition": sum(self.opposition.values()), "by_file": dict(self.opposition),
                        "customer": dict(self.customer), "duplicates": self.duplicates},
            "bad": {"count": self.bad, "by_reason": dict(self.bad_reasons), "lines": list(self.bad_lines),
                    "first": [{"line": line, "error": why} for line, why in self.first_bad]},
            "blank_lines": self.blank_lines, "column": self.column, "delimiter": self.delimiter,
            "opposition_files": {p: dict(c) for p, c in self.files.items()},
        }

    def text(self) -> str:
        removed = [f"opposition {sum(self.opposition.values())} ("
                   + ", ".join(f"{Path(p).name}: {k}" for p, k in self.opposition.items()) + ")"]
        removed += [f"{why} {k}" for why, k in self.customer.items()]
        removed.append(f"duplicates {self.duplicates}")
        text = f"{self.rows} rows: {self.written} written; removed: {', '.join(removed)}"
        if self.bad:
            text += f"; {self.bad} bad row{'s' if self.bad != 1 else ''} (first: line {self.bad_lines[0]})"
        return text


_REASON = re.compile(r"^([^:(]*)")


def _reason(why: str) -> str:
    return _REASON.match(why).group(1).strip()  # "not a telephone number: '...'" -> the kind


class _Run:
    def __init__(self, out: IO[str], opposition: Sequence[Opposition], status: Optional[Status],
                 dedupe: bool, err: Optional[IO[str]], name: str):
        self.out, self.files, self.status, self.dedupe, self.err, self.name = out, opposition, status, dedupe, err, name
        self.removed = {f.path: 0 for f in opposition}
        self.customer: Dict[str, int] = {}
        self.seen = np.zeros(0, dtype=np.uint64)
        self.rows = self.written = self.duplicates = self.blank = 0
        self.bad_lines = array("I")
        self.first_bad: List[Tuple[int, str]] = []
        self.reasons: Dict[str, int] = {}

    def chunk(self, rows: list, ends: List[int], lines: List[str], first_line: int, ncols: int, col: int) -> None:
        """Scrub one chunk of records (rows[i] a list of fields or a csv.Error, ending on
        physical line ends[i]) and write the kept ones' lines."""
        state = np.full(len(rows), BAD, dtype=np.uint8)
        try:
            sizes = np.fromiter(map(len, rows), dtype=np.intp, count=len(rows))
        except TypeError:  # a csv.Error among them
            sizes = np.array([len(r) if type(r) is list else -1 for r in rows], dtype=np.intp)
        good = np.flatnonzero(sizes == ncols)
        why: Dict[int, str] = {}
        if len(good) != len(rows):
            for i, r in enumerate(rows):
                if type(r) is not list:
                    why[i] = f"not CSV: {r}"
                elif not r:
                    state[i] = BLANK
                elif len(r) != ncols:
                    why[i] = f"wrong number of fields: {len(r)}, the header has {ncols}"
        pick = operator.itemgetter(col)
        texts = list(map(pick, rows)) if len(good) == len(rows) else [rows[i][col] for i in good.tolist()]
        keys, bad = number_keys(texts)
        for j, text in bad:
            why[int(good[j])] = text
        ok = keys != 0
        idx, keys = good[ok], keys[ok]
        order = np.argsort(keys, kind="stable")
        idx, keys = idx[order], keys[order]
        state[idx] = CALLABLE
        live = np.ones(len(keys), dtype=bool)
        for f in self.files:
            hit = live & f.contains(keys)
            state[idx[hit]] = OPPOSITION
            self.removed[f.path] += int(hit.sum())
            live &= ~hit
        idx, keys = idx[live], keys[live]
        if self.status is not None and len(keys):
            idx, keys = self._customer(state, idx, keys)
        if self.dedupe and len(keys):
            self._dedupe(state, idx, keys)
        self._count(state, why, ends, first_line)
        self._write(state, ends, lines, first_line)

    def _customer(self, state: np.ndarray, idx: np.ndarray, keys: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        reasons = self.status([digits_of(k) for k in keys.tolist()])
        live = np.ones(len(keys), dtype=bool)
        for j, why in enumerate(reasons):
            if why is not None:
                live[j] = False
                self.customer[why] = self.customer.get(why, 0) + 1
        state[idx[~live]] = CUSTOMER
        return idx[live], keys[live]

    def _dedupe(self, state: np.ndarray, idx: np.ndarray, keys: np.ndarray) -> None:
        # keys sorted stably: among rows of one number, the first in the file comes first
        _, first = np.unique(keys, return_index=True)
        dup = np.ones(len(keys), dtype=bool)
        dup[first] = False
        if len(self.seen):
            dup |= _member(self.seen, keys)
        state[idx[dup]] = DUPLICATE
        self.duplicates += int(dup.sum())
        fresh = np.unique(keys[~dup])
        self.seen = np.sort(np.concatenate([self.seen, fresh]), kind="stable")  # two sorted runs: a merge

    def _count(self, state: np.ndarray, why: Dict[int, str], ends: Sequence[int], first_line: int) -> None:
        blank = int((state == BLANK).sum())
        self.blank += blank
        self.rows += len(state) - blank
        for i in sorted(why):
            line, text = (ends[i - 1] if i else first_line) + 1, why[i]  # the record's first line
            self.bad_lines.append(line)
            kind = _reason(text)
            self.reasons[kind] = self.reasons.get(kind, 0) + 1
            if len(self.first_bad) < FIRST:
                self.first_bad.append((line, text))
            if self.err is not None and len(self.bad_lines) <= SHOWN:
                self.err.write(f"{self.name}:{line}: {text}\n")

    def _write(self, state: np.ndarray, ends: List[int], lines: List[str], first_line: int) -> None:
        keep = (state == CALLABLE).tolist()
        self.written += sum(keep)
        if len(lines) == len(keep):  # one line a record: the usual file
            self.out.writelines(itertools.compress(lines, keep))
            return
        start = first_line
        for k, end in zip(keep, ends):
            if k:
                self.out.writelines(lines[start - first_line:end - first_line])
            start = end

    def summary(self, column: str, delimiter: str) -> Summary:
        return Summary(self.rows, self.written, MappingProxyType(dict(self.removed)),
                       MappingProxyType(dict(self.customer)), self.duplicates, len(self.bad_lines),
                       tuple(self.bad_lines), tuple(self.first_bad), MappingProxyType(dict(self.reasons)),
                       self.blank, column, delimiter,
                       MappingProxyType({f.path: MappingProxyType(dict(f.counts)) for f in self.files}))


def _records(reader, n: int) -> list:
    """Up to n records (lists of fields; a csv.Error for one csv refuses), read at C speed."""
    rows: list = []
    while len(rows) < n:
        try:
            rows.extend(itertools.islice(reader, n - len(rows)))
            break
        except csv.Error as e:  # a field over csv's size limit: that record is bad; those read stay
            rows.append(e)
    return rows


def _records_with_lines(lines: List[str], delimiter: str, first_line: int) -> Tuple[list, List[int]]:
    """The records of `lines` (whole records) with the number of each one's last line."""
    reader = csv.reader(lines, delimiter=delimiter)
    rows: list = []
    ends: List[int] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return rows, ends
        except csv.Error as e:
            row = e
        rows.append(row)
        ends.append(first_line + reader.line_num)


def scrub(contacts: IO[str], out: IO[str], opposition: Sequence[Opposition], *, column: Optional[str] = None,
          status: Optional[Status] = None, dedupe: bool = True, err: Optional[IO[str]] = None,
          name: str = "contacts") -> Summary:
    """Write the callable rows of `contacts` (text read with newline="") to `out`, the header
    first; bad rows go to `err` (the first SHOWN) as name:line: why. UsageError when there is no
    header or no number column."""
    lines = iter(contacts)
    header_line = next(lines, None)
    if header_line is None or not header_line.strip():
        raise UsageError(f"{name}: no header line (the first line names the columns)")
    delimiter = sniff(header_line)
    raw, feed = itertools.tee(itertools.chain([header_line], lines))
    reader = csv.reader(feed, delimiter=delimiter)
    header = next(reader)
    col = choose_column(header, column)
    head_end = reader.line_num
    out.writelines(itertools.islice(raw, head_end))
    run = _Run(out, opposition, status, dedupe, err, name)
    last = head_end
    while True:
        rows = _records(reader, CHUNK_ROWS)
        if not rows:
            break
        lines = list(itertools.islice(raw, reader.line_num - last))
        if len(lines) == len(rows) and csv.Error not in map(type, rows):
            ends: Sequence[int] = range(last + 1, last + 1 + len(rows))  # one line a record: the usual file
        else:  # a record over several lines, or one csv refused: read again, record by record
            rows, ends = _records_with_lines(lines, delimiter, last)
        run.chunk(rows, ends, lines, last, len(header), col)
        last = reader.line_num
    return run.summary(header[col].lstrip("\ufeff"), delimiter)


# ---------------------------------------------------------------------- the command
def customer_status(screen, customer: str, now: Optional[float] = None) -> Status:
    """What the customer's rules say of each number, through Screen.outbound_status_many: on the
    customer's opposition or red lists, refused within canvass.refused's window, or called
    canvass.repeat's `limit` times in its window already (the next call would be one too many).
    A rule disabled in the configuration removes nothing. UsageError for an unknown customer."""
    now = time.time() if now is None else now
    repeat, refused = screen.settings["canvass.repeat"], screen.settings["canvass.refused"]
    limit = repeat["limit"] if repeat["enabled"] else None

    def status(dests: List[str]) -> List[Optional[str]]:
        out: List[Optional[str]] = []
        for s in screen.outbound_status_many(customer, dests, now):
            if s is None:  # pragma: no cover - scrub hands over canonical numbers only
                out.append("not a telephone number")
            elif s.opposition:
                out.append("customer opposition")
            elif s.refused > 0 and refused["enabled"]:
                out.append("refused")
            elif limit is not None and s.repeat >= limit:
                out.append("repeat limit")
            else:
                out.append(None)
        return out

    status([])  # an unknown customer is a usage error now, before any row
    return status


def main(args) -> int:
    """`manverify scrub` (arguments from cli.py)."""
    from ..cli import EXIT_CLOSED_PIPE, EXIT_FAILED, EXIT_OK

    if not args.opposition and not args.customer:
        raise UsageError("scrub needs --opposition FILE... or --customer ID with --config FILE")
    if bool(args.customer) != bool(args.config):
        raise UsageError("--customer and --config go together")
    if not args.output and sys.stdout is None:
        return EXIT_CLOSED_PIPE  # started with stdout closed (`>&-`): the rows would have no reader
    status = customer_status(batch.load(args.config), args.customer) if args.customer else None
    files = [load_opposition(p) for p in args.opposition or []]
    name = "stdin" if args.contacts == "-" else args.contacts
    try:
        source = (io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="surrogateescape", newline="")
                  if args.contacts == "-" else
                  open(args.contacts, encoding="utf-8", errors="surrogateescape", newline=""))
    except OSError as e:
        raise UsageError(f"cannot read {args.contacts}: {e.strerror or e}") from None
    with source:
        if args.output:
            summary = _to_file(source, args.output, files, status, args, name)
        else:
            with _stdout() as out:
                summary = scrub(source, out, files, column=args.column, status=status,
                                dedupe=not args.keep_duplicates, err=sys.stderr, name=name)
    if summary.bad > SHOWN:
        print(f"{name}: {summary.bad - SHOWN} more bad rows (every line number in --summary)", file=sys.stderr)
    print(summary.text(), file=sys.stderr)
    if args.summary:
        with open(args.summary, "w", encoding="utf-8") as f:
            json.dump(summary.to_dict(), f)
    return EXIT_FAILED if summary.bad else EXIT_OK


@contextlib.contextmanager
def _stdout() -> Iterator[IO[str]]:
    """stdout as text that keeps the input's bytes (surrogateescape) and line ends, on the same
    file descriptor: closing it, even on a closed pipe, leaves sys.stdout's descriptor alone."""
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # no descriptor: stdout captured in-process
        fd = None
    if fd is not None:
        with open(fd, "w", encoding="utf-8", errors="surrogateescape", newline="", closefd=False) as out:
            yield out
        return
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", errors="surrogateescape", newline="")
    try:
        yield out
        out.flush()
    finally:
        out.detach()


def _to_file(source, path: str, files, status, args, name: str) -> Summary:
    """Into a temporary file beside `path`, renamed over it when complete: a failed run leaves
    no half-scrubbed file that could be dialled."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=str(target.parent or "."))
    try:
        with open(fd, "w", encoding="utf-8", errors="surrogateescape", newline="") as out:
            summary = scrub(source, out, files, column=args.column, status=status,
                            dedupe=not args.keep_duplicates, err=sys.stderr, name=name)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
    return summary
