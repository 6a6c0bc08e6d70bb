"""Arcep's MAJNUM file: which operator holds the range a number is in (rule plan.unassigned).

    m = Majnum.load("MAJNUM.csv")      # ConfigError naming file:line for unreadable lines
    m.holder("33162001234")            # "FRTE", or None when no assigned range holds the number
    source = MajnumSource("MAJNUM.csv")  # the same, refreshed when the file changes

The file as Arcep publishes it: ';'-separated, cp1252, one header line
`EZABPQM;Tranche_Debut;Tranche_Fin;Mnémo;Territoire;Date_Attribution`, then one assigned range a
line in national form (`01056;0105600000;0105699999;FRTE;Métropole;01/01/2017`), short numbers
as one-number ranges (`3999;3999;3999;TEST;National;22/09/2025`). National boundaries become
E.164 the way manverify.tn.canonical() does it (0590… -> 590590…), so holder() takes the
canonical numbers the rest of manverify uses.

The table is two sorted lists of E.164 integers (range starts and ends) and the holder of each:
holder() is one bisect (under 1 µs at 150k ranges; ~150 bytes a range resident, 20 MB for the
whole file). Ranges of different lengths cannot be confused: both ends of a range have
the same number of digits, and an integer with more digits is larger than any with fewer.

Operators fetch the file daily. A download cut short or replaced by an error page must never make
every number "unassigned": MajnumSource refuses a new file with unreadable lines or far fewer
ranges than the one in use, keeps the old table, logs the refusal and counts it.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from bisect import bisect_right
from typing import Dict, List, NamedTuple, Optional, Tuple

from .. import ticker
from ..errors import ConfigError
from ..reload import Watch
from ..tn import canonical

log = logging.getLogger("manverify.screen.majnum")

HEADER = ("EZABPQM", "Tranche_Debut", "Tranche_Fin", "Mnémo", "Territoire", "Date_Attribution")
MIN_RATIO = 0.9  # a new file with fewer ranges than this share of the one in use is refused
_SHOWN_ERRORS = 5
_DATE = re.compile(r"[0-3][0-9]/[01][0-9]/[12][0-9]{3}\Z|[12][0-9]{3}-[01][0-9]-[0-3][0-9]\Z")  # a cut line fails here


class LineError(NamedTuple):
    line: int  # 1-based, as an editor shows it
    message: str


def _e164(boundary: str) -> str:
    """A range boundary in national form as canonical E.164 digits (short numbers stay as they are)."""
    if boundary[0] != "0":
        return boundary
    if len(boundary) == 10:
        return canonical(boundary)
    return "33" + boundary[1:]  # 0700 + 10 digits (M2M): canonical() only knows 10-digit national numbers


def _code(e164: str) -> str:
    """The country code of a range boundary ("" for a short number)."""
    if len(e164) <= 6:
        return ""
    return "33" if e164.startswith("33") else e164[:3]


def _parse(text: str) -> Tuple[List[Tuple[int, int, str, int]], List[LineError]]:
    rows: List[Tuple[int, int, str, int]] = []
    errors: List[LineError] = []
    lines = text.split("\n")
    header = tuple(c.strip() for c in lines[0].lstrip("\ufeff").rstrip("\r").split(";")) if lines else ()
    if header[:len(HEADER)] != HEADER:
        errors.append(LineError(1, f"not the MAJNUM header {';'.join(HEADER)!r}: {lines[0][:80]!r}"))
    for no, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        cols = [c.strip() for c in line.split(";")]
        while len(cols) > len(HEADER) and not cols[-1]:
            cols.pop()  # a trailing ';'
        if len(cols) != len(HEADER):
            errors.append(LineError(no, f"{len(cols)} fields, expected {len(HEADER)}: {line[:80]!r}"))
            continue
        block, start, end, holder, _territory, day = cols
        if not (start.isdigit() and end.isdigit() and start.isascii() and end.isascii()):
            errors.append(LineError(no, f"range boundaries are not digits: {start[:20]!r}, {end[:20]!r}"))
        elif len(start) != len(end) or start > end:
            errors.append(LineError(no, f"not a range: {start} to {end}"))
        elif not start.startswith(block) or not block.isdigit():
            errors.append(LineError(no, f"{block!r} is not the block of {start}"))
        elif not holder:
            errors.append(LineError(no, "no Mnémo (operator code)"))
        elif day and not _DATE.match(day):
            errors.append(LineError(no, f"Date_Attribution {day[:20]!r} is no date (dd/mm/yyyy)"))
        else:
            first, last = _e164(start), _e164(end)
            if _code(first) != _code(last):
                errors.append(LineError(no, f"{start} to {end} spans two country codes"))
            else:
                rows.append((int(first), int(last), holder, no))
    return rows, errors


class Majnum:
    """One MAJNUM table, immutable once loaded."""

    __slots__ = ("path", "ranges", "errors", "size", "sha256", "mtime", "version", "_starts", "_ends", "_who")

    def __init__(self, rows: List[Tuple[int, int, str, int]], errors: List[LineError], *, path: str = "",
                 size: int = 0, sha256: str = "", mtime: float = 0.0):
        rows.sort()
        errors = list(errors)
        names: Dict[str, str] = {}  # one str object per operator, however many ranges it holds
        starts: List[int] = []
        ends: List[int] = []
        who: List[str] = []
        prev = (-1, -1, "", 0)
        for row in rows:
            first, last, holder, no = row
            if first <= prev[1]:
                if row[:3] != prev[:3]:  # the same range listed twice is harmless
                    errors.append(LineError(no, f"range {first}-{last} ({holder}) overlaps the range of line {prev[3]}"))
                continue
            starts.append(first)
            ends.append(last)
            who.append(names.setdefault(holder, holder))
            prev = row
        errors.sort()
        self.path = path
        self.ranges = len(starts)
        self.errors: Tuple[LineError, ...] = tuple(errors)
        self.size, self.sha256, self.mtime = size, sha256, mtime
        day = time.strftime("%Y-%m-%d", time.gmtime(mtime)) if mtime else "-"
        self.version = f"{os.path.basename(path) or 'MAJNUM'} {day} {size}B sha256:{sha256[:12]}"
        # Lists rather than arrays: bisect on a list compares the int objects in place, about
        # twice as fast per lookup as on an array.array, which makes a new int at every step.
        self._starts, self._ends, self._who = starts, ends, who

    @classmethod
    def load(cls, path, *, strict: bool = True) -> "Majnum":
        """Read Arcep's file. strict: any unreadable line is a ConfigError naming file:line (at start,
        a bad file is a configuration mistake); otherwise the errors are kept in .errors for
        plausible_after() to judge."""
        try:
            with open(path, "rb") as f:
                data = f.read()
            st = os.stat(path)
        except OSError as e:
            raise ConfigError(f"cannot read the MAJNUM file {path}: {e}") from None
        text = data.decode("cp1252", errors="replace")
        if text.startswith("\u00ef\u00bb\u00bf") or "Mn\u00c3\u00a9mo" in text[:200]:
            text = data.decode("utf-8-sig", errors="replace")  # re-saved as UTF-8 by a spreadsheet
        rows, errors = _parse(text)
        m = cls(rows, errors, path=os.fspath(path), size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                mtime=st.st_mtime)
        if strict and m.errors:
            raise ConfigError(m.describe_errors())
        return m

    def describe_errors(self) -> str:
        shown = "; ".join(f"{self.path}:{e.line}: {e.message}" for e in self.errors[:_SHOWN_ERRORS])
        more = len(self.errors) - _SHOWN_ERRORS
        return f"{len(self.errors)} unreadable line(s) in the MAJNUM file: {shown}" + (
            f" (and {more} more)" if more > 0 else "")

    def holder(self, e164: str) -> Optional[str]:
        """The Mnémo of the operator holding the range the canonical number is in, None when no
        assigned range holds it (or the text is no number)."""
        if type(e164) is not str or not e164.isdigit() or not e164.isascii() or len(e164) > 19:
            return None
        x = int(e164)
        i = bisect_right(self._starts, x) - 1
        if i >= 0 and x <= self._ends[i]:
            return self._who[i]
        return None

    def plausible_after(self, old: Optional["Majnum"], min_ratio: float = MIN_RATIO) -> Optional[str]:
        """Why this table must not replace `old` (unreadable lines, no ranges, far fewer ranges),
        or None when it may."""
        if self.errors:
            return self.describe_errors()
        if not self.ranges:
            return f"{self.path}: no ranges"
        if old is not None and self.ranges < min_ratio * old.ranges:
            return (f"{self.path}: {self.ranges} ranges, fewer than {min_ratio:.0%} of the {old.ranges} "
                    f"in use (a truncated download?)")
        return None

    def __repr__(self) -> str:
        return f"<Majnum {self.version} {self.ranges} ranges>"


class MajnumSource:
    """The MAJNUM table in use, replaced when its file changes and the new one is plausible.

    Exposes loads (tables put in use, the first included), refusals (new files refused or
    unreadable) and last_error (why the last one was refused, "" once a later one is in use):
    the engine exports them as metrics."""

    def __init__(self, path, *, min_ratio: float = MIN_RATIO, background: bool = True):
        if not 0 < min_ratio <= 1:
            raise ConfigError(f"majnum min_ratio must be in (0, 1], not {min_ratio!r}")
        self.path, self.min_ratio = path, min_ratio
        # The watch first, so that a change made while the first table loads is seen next time.
        self._watch = Watch([path], self._build, self._apply, what=f"MAJNUM file {path}", background=False)
        self.table = Majnum.load(path)
        log.info("MAJNUM table in use: %s, %d ranges", self.table.version, self.table.ranges)
        if background:
            ticker.add(self._watch.check)

    def _build(self) -> Majnum:
        new = Majnum.load(self.path, strict=False)
        why = new.plausible_after(self.table, self.min_ratio)
        if why:
            raise ValueError(f"refused, keeping {self.table.version}: {why}")
        return new

    def _apply(self, new: Majnum) -> None:
        self.table = new  # one reference assignment: a call sees the old table or the new one

    def check(self) -> bool:
        """Look at the file now (the ticker does it about once a second); True when a new table is in use."""
        return self._watch.check()

    def holder(self, e164: str) -> Optional[str]:
        return self.table.holder(e164)

    @property
    def loads(self) -> int:
        return 1 + self._watch.reloads

    @property
    def refusals(self) -> int:
        return self._watch.failures

    @property
    def last_error(self) -> str:
        return self._watch.error

    def stats(self) -> dict:
        t = self.table
        return {"version": t.version, "ranges": t.ranges, "loads": self.loads, "refusals": self.refusals,
                "last_error": self.last_error}
