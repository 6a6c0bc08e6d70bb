"""`manverify verify --batch`: a JSONL file of calls in, one JSON record per input line out, in order.

The run survives its input. A line that is not a call (not UTF-8, not JSON, a key missing or of the
wrong type) becomes an error record, `{"line": n, "id": …, "error": "…"}`, and the next line goes on
through verify_many() like any other. Records stream out a chunk at a time: the file is never held
whole, and a reader at the other end of a pipe sees results as soon as their chunk is verified.
"""
from __future__ import annotations

import json
import math
import time
from collections import Counter
from typing import IO, Any, Dict, Iterable, List, Optional, Tuple, Union

CHUNK = 1024  # lines (so at most as many calls) per verify_many(): enough for its threads, little to hold
_PROGRESS_EVERY = 0.2  # seconds between two progress lines on a terminal

# JSON's names for the types json.loads() returns, for messages a person writing the file reads
_JSON_TYPES = {str: "a string", int: "a number", float: "a number", bool: "a boolean",
               type(None): "null", list: "an array", dict: "an object"}

NO_ID = object()  # a call with no "id" at all (null is an id, and is echoed)


def decision_record(result, *, line: Optional[int] = None, id: Any = NO_ID) -> dict:  # noqa: A002
    """The JSON-ready output record of one verified call: line number and id first (when known)."""
    rec: Dict[str, Any] = {}
    if line is not None:
        rec["line"] = line
    if id is not NO_ID:
        rec["id"] = id
    rec.update(result.to_dict())
    return rec


class BadLine(ValueError):
    """An input line that is not a call; its message goes into the line's error record."""


def parse_call(obj: Any, default_now: Optional[float]) -> dict:
    """The verify() keywords of one decoded line; raises BadLine with a reason a person can act on.

    These are the file format's rules, in JSON's terms: the verifier checks its own arguments
    again. Keys other than the call's and `id` are ignored, so a call log may carry its own fields.
    """
    if not isinstance(obj, dict):
        raise BadLine(f"not a JSON object but {_JSON_TYPES.get(type(obj), 'a value')}")
    for key in ("orig", "dest"):
        if key not in obj:
            raise BadLine(f"missing key {key!r}")
        _expect(obj, key, str)
    identity = obj.get("identity")
    if isinstance(identity, list):
        if not all(isinstance(v, str) for v in identity):
            raise BadLine("'identity' must be a string or an array of strings")
    else:
        _expect(obj, "identity", (str, type(None)))
    _expect(obj, "date", (str, type(None)))
    now = obj.get("now")
    if now is None:
        now = default_now
    elif isinstance(now, bool) or not isinstance(now, (int, float)) or not _finite(now):
        raise BadLine(f"'now' must be epoch seconds (a finite number), not {_shown(now)}")
    return {"identity": identity, "orig": obj["orig"], "dest": obj["dest"], "date": obj.get("date"),
            "now": now}


def _expect(obj: dict, key: str, types) -> None:
    value = obj.get(key)
    if not isinstance(value, types):
        wanted = " or ".join(sorted({_JSON_TYPES[t] for t in (types if isinstance(types, tuple) else (types,))}))
        raise BadLine(f"{key!r} must be {wanted}, not {_shown(value)}")


def _shown(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _finite(x: Union[int, float]) -> bool:
    try:
        return math.isfinite(x)
    except OverflowError:  # an int beyond float's range, e.g. 1 followed by 400 zeros
        return False


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def decode_line(raw: bytes) -> Any:
    """One input line as a JSON value; raises BadLine. NaN and Infinity are not JSON (RFC 8259)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadLine(f"not UTF-8 (byte {e.start + 1})") from None
    try:
        return json.loads(text.rstrip("\r\n"), parse_constant=_refuse_constant)
    except json.JSONDecodeError as e:  # the position in a line is its column
        raise BadLine(f"not JSON: {e.msg}: column {e.colno}") from None
    except ValueError as e:
        raise BadLine(f"not JSON: {e}") from None


class Batch:
    """One batch run over JSONL lines: reads them a chunk at a time, answers every call of a chunk
    at once, writes one record per line in input order, counts calls and bad lines. What a call
    is and how it is answered is a subclass's: parse(), answer(), record(), tally(), ok."""

    verb = "answered"
    failure = "the answer failed on this call"  # the error of a line whose call raised

    def __init__(self, out: IO[str], progress: Optional[IO[str]] = None, default_now: Optional[float] = None):
        self.out = out
        self.progress = progress
        self.default_now = default_now
        self.calls = 0  # answered: each has its record
        self.bad: List[int] = []  # line numbers of the bad lines
        self.start = time.perf_counter()
        self._shown = -math.inf  # the first chunk shows at once: the run is alive

    def parse(self, obj: Any) -> dict:
        raise NotImplementedError

    def answer(self, calls: List[dict]) -> list:
        """One answer per call, in order; an Exception in place of an answer makes its line bad."""
        raise NotImplementedError

    def record(self, answer: Any, line: int, ident: Any) -> dict:
        raise NotImplementedError

    def tally(self) -> str:
        raise NotImplementedError

    def feed(self, lines: Iterable[bytes]) -> None:
        # pending: (line number, id or NO_ID, call or error text), in input order
        pending: List[Tuple[int, Any, Union[dict, str]]] = []
        for lineno, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            ident = NO_ID
            try:
                obj = decode_line(raw)
                if isinstance(obj, dict):
                    ident = obj.get("id", NO_ID)
                entry = self.parse(obj)
            except BadLine as e:
                entry = str(e)
            pending.append((lineno, ident, entry))
            if len(pending) == CHUNK:
                self._flush(pending)
        self._flush(pending)

    def _flush(self, pending: list) -> None:
        calls = [entry for _, _, entry in pending if type(entry) is dict]
        answers = iter(self.answer(calls) if calls else ())
        records = []
        for lineno, ident, entry in pending:
            if type(entry) is dict:
                a = next(answers)
                if isinstance(a, Exception):
                    entry = f"{self.failure}: {type(a).__name__}: {a}"
                else:
                    self.calls += 1
                    records.append(self.record(a, lineno, ident))
                    continue
            self.bad.append(lineno)
            records.append({"line": lineno, "id": None if ident is NO_ID else ident, "error": entry})
        pending.clear()
        if records:
            self.out.write("".join(json.dumps(rec, separators=(",", ":")) + "\n" for rec in records))
            self.out.flush()  # stream: a reader downstream sees each chunk as soon as it is done
        self._show_progress()

    def _show_progress(self) -> None:
        if self.progress is None:
            return
        t = time.perf_counter()
        if t - self._shown >= _PROGRESS_EVERY:
            self._shown = t
            bad = f", {len(self.bad)} bad line{'s' if len(self.bad) != 1 else ''}" if self.bad else ""
            self.progress.write(f"\r{self.calls} calls {self.verb}{bad}, {self._rate(t):.0f} calls/s")
            self.progress.flush()

    def _rate(self, t: float) -> float:
        return self.calls / (t - self.start) if t > self.start else 0.0

    def summary(self) -> str:
        """The closing line: calls, their tally, bad lines, throughput."""
        text = f"{self.calls} calls, {self.tally() or 'none'}"
        if self.bad:
            n = len(self.bad)
            text += f"; {n} bad line{'s' if n != 1 else ''} (first: line {self.bad[0]})"
        return f"{text}; {self._rate(time.perf_counter()):.0f} calls/s"

    @property
    def ok(self) -> bool:
        raise NotImplementedError

    def drive(self, lines: Iterable[bytes], err: IO[str]) -> bool:
        """Every line through, the summary to `err` (after erasing the progress line); self.ok."""
        self.feed(lines)
        if self.progress is not None:
            err.write("\r\x1b[K")  # erase the progress line; the summary takes its place
        print(self.summary(), file=err)
        return self.ok


class Run(Batch):
    """`verify --batch`: each call verified, its Result recorded; ok when every call passed."""

    verb = "verified"
    failure = "the verifier failed on this call"

    def __init__(self, verifier, out: IO[str], progress: Optional[IO[str]] = None,
                 default_now: Optional[float] = None):
        super().__init__(out, progress, default_now)
        self.verifier = verifier
        self.codes: Counter = Counter()

    def parse(self, obj: Any) -> dict:
        return parse_call(obj, self.default_now)

    def answer(self, calls: List[dict]) -> list:
        """verify_many(), and should the verifier fail on a call's data (a defect: it must answer
        every call with a Result), each call alone, so that only the calls it fails on are lost."""
        try:
            return self.verifier.verify_many(calls)
        except Exception:
            pass
        out = []
        for call in calls:
            try:
                out.append(self.verifier.verify(**call))
            except Exception as e:  # recorded on the call's line, counted as a bad line
                out.append(e)
        return out

    def record(self, r: Any, line: int, ident: Any) -> dict:
        self.codes[r.sip_code] += 1
        return decision_record(r, line=line, id=ident)

    def tally(self) -> str:
        return ", ".join(f"{'pass' if c is None else c}: {k}"
                         for c, k in sorted(self.codes.items(), key=lambda x: x[0] or 0))

    @property
    def ok(self) -> bool:
        return not self.bad and set(self.codes) <= {None}


def run(verifier, lines: Iterable[bytes], out: IO[str], err: IO[str], progress: bool,
        default_now: Optional[float] = None) -> bool:
    """Verify every call of `lines`, write one record per line to `out` and the summary to `err`
    (with progress lines on it first when `progress`); True when every call passed."""
    return Run(verifier, out, err if progress else None, default_now).drive(lines, err)
