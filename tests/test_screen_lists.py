"""Screening lists: every way a list line can be written, what it matches (against tn.canonical and
a plain-Python reference), scope, expiry, bad lines with their line numbers, and reload."""
import logging
from datetime import datetime, timezone
import os
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from manverify import tn
from manverify.errors import ConfigError
from manverify.screen import listfile
from manverify.screen.lists import NO_HITS, Hit, Lists, ListsWatch
from manverify.screen.numtable import NumberTable, key, stable_order

NOW = 1_800_000_000  # 2027-01-15


def _lists(tmp_path, **files):
    """Lists from {"block": "text", "partners": {"P": {"allow": "text"}}}, one file per list."""
    config = {}
    for name, text in files.items():
        if name == "partners":
            config["partners"] = {}
            for partner, lists in text.items():
                config["partners"][partner] = {}
                for lname, t in lists.items():
                    (tmp_path / f"{partner}-{lname}.txt").write_text(t)
                    config["partners"][partner][lname] = [f"{partner}-{lname}.txt"]
        else:
            (tmp_path / f"{name}.txt").write_text(text)
            config[name] = [f"{name}.txt"]
    return Lists.from_config(config, tmp_path)


def _replace(path, text):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@pytest.mark.parametrize("line", [
    "0612345678", "06 12 34 56 78", "06.12.34.56.78", "06-12-34-56-78", "+33 6 12 34 56 78", "+33612345678",
    "0033612345678", "0033 6 12 34 56 78", "33612345678", "tel:+33-6-12-34-56-78", "  0612345678  ",
    "0612345678 # a comment", "0612345678\r", "+33 (0)6 12 34 56 78".replace("(0)", ""),
])
def test_a_number_in_any_common_form_matches_its_canonical_digits(tmp_path, line):
    lists = _lists(tmp_path, block=f"# header\n{line}\n")
    hit = lists.match("33612345678", None, NOW).block
    assert hit == Hit("block", "global", f"{tmp_path / 'block.txt'}:2", "number")
    assert lists.match("33612345679", None, NOW) is NO_HITS


@pytest.mark.parametrize("line, number", [
    ("0590123456", "590590123456"), ("0690123456", "590690123456"), ("0262123456", "262262123456"),
    ("0639123456", "262639123456"), ("+590 690 12 34 56", "590690123456"), ("+44 20 7946 0018", "442079460018"),
    ("3179", "3179"), ("112", "112"),
])
def test_overseas_foreign_and_short_numbers(tmp_path, line, number):
    lists = _lists(tmp_path, dno=line)
    assert lists.match(number, None, NOW).dno.entry == "number"
    assert lists.match(number, None, NOW).block is None


def test_file_without_final_newline_with_crlf_and_bom(tmp_path):
    (tmp_path / "b.txt").write_bytes(b"\xef\xbb\xbf0612345678\r\n+33612345679\r\n\r\n33612345670")
    lists = Lists.from_config({"block": ["b.txt"]}, tmp_path)
    assert [lists.match(n, None, NOW).block.source.rsplit(":", 1)[1]
            for n in ("33612345678", "33612345679", "33612345670")] == ["1", "2", "4"]


def _line_strategy():
    digits = st.text("0123456789", min_size=0, max_size=17)
    compact = st.one_of(digits, digits.map(lambda d: "+" + d), digits.map(lambda d: "0" + d),
                        st.from_regex(r"0[1-9][0-9]{8}", fullmatch=True), st.from_regex(r"\+?33[1-9][0-9]{8}", fullmatch=True),
                        st.from_regex(r"0(590|690|262|269|639|594|596|697)[0-9]{6}", fullmatch=True))
    ending = st.sampled_from(["", "\r", " ", "#x", "*"])
    return st.tuples(compact, ending).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_line_strategy(), max_size=40))
@example(["+0612345678", "0012345678", "0612345678", "+", "0", "", "1234567890123456", "061234567", "+33 6"])
def test_numpy_reading_gives_what_parse_line_gives_for_every_line(lines):
    """The compact forms are read by numpy; the reference is parse_line (tn.canonical)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "l.txt"
        path.write_bytes("\n".join(lines).encode())
        got = listfile.read(path)
    expected_numbers, expected_errors = {}, []
    for number, line in enumerate(lines, 1):
        try:
            entry = listfile.parse_line(line)
        except listfile.BadLine as e:
            expected_errors.append((number, str(e)))
            continue
        if entry is not None and entry.kind == "number":
            expected_numbers[number] = key(entry.digits[0])
    assert dict(zip(got.lines.tolist(), got.keys.tolist())) == expected_numbers
    assert len(got.keys) == len(expected_numbers)
    assert got.errors == expected_errors[: listfile.MAX_ERRORS] and got.error_count == len(expected_errors)


@given(st.from_regex(r"0[1-9][0-9]{8}", fullmatch=True), st.integers(0, 4))
@example("0690123456", 1)  # "06*" also covers 0690 (-> 590690...)
@example("0639123456", 2)
@example("0593123456", 3)  # 059 but not overseas: 33593...
def test_a_national_prefix_matches_the_national_numbers_it_starts(national, cut):
    prefix = national[: 1 + cut] if cut else "0"
    prefixes = listfile.parse_line(prefix + "*").digits
    for other in (national, national[:-1] + str((int(national[-1]) + 1) % 10),
                  "0" + str((int(national[1]) % 9) + 1) + national[2:]):
        canonical = tn.canonical(other)
        assert any(canonical.startswith(p) for p in prefixes) == other.startswith(prefix), (prefix, other)


@pytest.mark.parametrize("line, inside, outside", [
    ("0162*", ["33162000000", "33162999999", "331629", "33162"], ["3316", "33163000000", "33161999999"]),
    ("+33 1 62 *", ["33162000000"], ["33163000000"]),
    ("0033162*", ["33162000000"], ["33163000000"]),
    ("3316*", ["33162000000", "3316"], ["331", "33170000000"]),
    ("0590*", ["590590123456"], ["33590123456", "590690123456"]),
    ("06*", ["33612345678", "33712345678"[:0] + "33699999999", "590690123456", "262639123456", "596697000000"],
     ["33712345678", "590590123456"]),
    ("0162000000-0162999999", ["33162000000", "33162999999", "33162500000"], ["33163000000", "331625", "331625000000"]),
    ("0162000000 - 0162000099", ["33162000050"], ["33162000100"]),
    ("+33 1 62 00 00 00 - +33 1 62 00 00 09", ["33162000009"], ["33162000010"]),
    ("0612-345678", ["33612345678"], []),  # one dash, ends of different lengths: a number
])
def test_prefixes_and_ranges(tmp_path, line, inside, outside):
    lists = _lists(tmp_path, block=line)
    kind = "prefix" if "*" in line else "range" if "-" in line and line != "0612-345678" else "number"
    for n in inside:
        assert lists.match(n, None, NOW).block.entry == kind, n
    for n in outside:
        assert lists.match(n, None, NOW) is NO_HITS, n


def test_overlapping_and_duplicate_entries_each_still_match(tmp_path):
    lists = _lists(tmp_path, block="\n".join([
        "01*", "0162*", "0162000000-0162000099", "0162000050-0162000150", "0162000060", "0162000060",
        "33162000060", "0162000000-0162000099",  # duplicates
    ]))
    assert lists.match("33162000060", None, NOW).block.entry == "number"
    assert lists.match("33162000060", None, NOW).block.source.endswith(":5")  # the first of the duplicates
    assert lists.match("33162000120", None, NOW).block.source.endswith(":4")
    assert lists.match("33162000010", None, NOW).block.source.endswith(":3")
    assert lists.match("33162000200", None, NOW).block.source.endswith(":2")  # the narrower prefix
    assert lists.match("33170000000", None, NOW).block.source.endswith(":1")
    assert lists.version["numbers"] == 3 and lists.version["ranges"] == 3


def test_expiry_dates_and_times(tmp_path):
    lists = _lists(tmp_path, block="\n".join([
        "0612345678 expires=2027-01-31",  # stops at 2027-01-31T00:00Z
        "0612345679  expires=2027-01-31T18:00:00+01:00",
        "0612345670 expires=2027-01-31T17:00:00Z",
        "0612345671 expires=2027-01-31T17:00:00",  # no offset: UTC
        "0162* expires=2027-01-31",
        "0163000000-0163000009 expires=2027-01-31",
    ]))
    midnight, five = 1_801_353_600, 1_801_353_600 + 17 * 3600
    for n in ("33612345678", "33162000000", "33163000001"):
        assert lists.match(n, None, midnight - 1).block is not None
        assert lists.match(n, None, midnight).block is None
    for n in ("33612345679", "33612345670", "33612345671"):
        assert lists.match(n, None, five - 1).block is not None
        assert lists.match(n, None, five) is NO_HITS


def test_an_expired_entry_leaves_the_others(tmp_path):
    lists = _lists(tmp_path, block="\n".join([
        "0612345678 expires=2027-01-31", "0612345678 expires=2026-01-01", "0612345678 expires=2028-01-01",
        "06* expires=2030-01-01", "0612* expires=2020-01-01", "0612000000-0612999999 expires=2029-01-01",
        "0612300000-0612399999 expires=2027-01-01",
    ]))
    assert lists.match("33612345678", None, NOW).block.source.endswith(":3")  # the one that lasts
    assert lists.match("33612345678", None, 1_850_000_000).block.source.endswith(":6")  # 2028-08: the range
    assert lists.match("33612345678", None, 1_870_000_000).block.source.endswith(":4")  # 2029-04: the prefix
    assert lists.match("33612345678", None, 1_900_000_000) is NO_HITS  # 2030-03
    assert lists.match("33612300000", None, 1_790_000_000).block.source.endswith(":6")  # the range that lasts


def test_partner_lists_apply_to_calls_from_that_partner_only(tmp_path):
    lists = _lists(tmp_path, block="0612345678", allow="0612345679",
                   partners={"ACME": {"block": "0612345679\n0612345670", "dno": "0612345678"},
                             "OTHER": {"allow": "0612345670"}})
    assert lists.match("33612345679", "ACME", NOW).block == Hit("block", "ACME", f"{tmp_path / 'ACME-block.txt'}:1", "number")
    assert lists.match("33612345679", "ACME", NOW).allow.scope == "global"
    assert lists.match("33612345678", "ACME", NOW).dno.scope == "ACME"
    assert lists.match("33612345670", "OTHER", NOW) == (None, lists.match("33612345670", "OTHER", NOW).allow, None)
    assert lists.match("33612345670", "OTHER", NOW).allow.scope == "OTHER"
    for partner in (None, "NOBODY", "", ["unhashable"], 42):
        assert lists.match("33612345670", partner, NOW) is NO_HITS
        assert lists.match("33612345678", partner, NOW).dno is None
        assert lists.match("33612345678", partner, NOW).block.scope == "global"


@given(st.one_of(st.none(), st.text(max_size=20), st.integers(), st.binary(max_size=5)), st.one_of(st.none(), st.text(max_size=3)),
       st.one_of(st.none(), st.floats(allow_nan=True), st.text(max_size=2)))
@example("٣٣٦١٢٣٤٥٦٧٨", None, NOW)  # Arabic-Indic digits: str.isdigit() says yes
@example("33612345678", None, float("nan"))
def test_match_never_raises(tmp_path_factory, e164, partner, now):
    lists = _sample(tmp_path_factory)
    assert lists.match(e164, partner, now) in (NO_HITS,) or isinstance(lists.match(e164, partner, now).block, Hit)


_SAMPLE = []


def _sample(factory):
    if not _SAMPLE:
        _SAMPLE.append(_lists(factory.mktemp("sample"), block="0612345678 expires=2030-01-01\n33*",
                              partners={"P": {"allow": "0612345678"}}))
    return _SAMPLE[0]


@pytest.mark.parametrize("text, line, says", [
    ("0612345678\nbonjour\n", 2, "not a telephone number"),
    ("\n\n0612345678 expires=tomorrow\n", 3, "ISO 8601"),
    ("0612345678 expires=20270131", 1, "ISO 8601"),  # Python 3.11 reads it, 3.9 does not: neither do we
    ("0612345678 expires=2027-02-30", 1, "ISO 8601"),
    ("0162999999-0162000000", 1, "after its last"),
    ("0162000000-162999999", 1, "different lengths"),
    ("*\n", 1, "a prefix is digits"),
    ("+0612*", 1, "international prefix"),
    ("01234567890*", 1, "national prefix"),
    ("*31#0612345678", 1, "a comment"),  # everything from '#' is a comment: "*31" is left
    ("0612345678 expires=2200-01-01", 1, "out of range"),
    ("0612345678 0612345679", 1, "more than 15 digits"),
    ("0612345678 - 06123456", 1, "different lengths"),
])
def test_a_bad_line_is_a_config_error_naming_the_key_file_and_line(tmp_path, text, line, says):
    if text == "*31#0612345678":
        with pytest.raises(ConfigError, match=rf"lists\.block: .*block\.txt:{line}: ") as e:
            _lists(tmp_path, block=text)
        return
    with pytest.raises(ConfigError, match=rf"lists\.block: .*block\.txt:{line}: .*{says}"):
        _lists(tmp_path, block=text)


def test_many_bad_lines_name_the_first_few_and_count_the_rest(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"0612345678\n" + b"junk\n" * 10 + b"\xff\xfe\n")
    with pytest.raises(ConfigError) as e:
        Lists.from_config({"partners": {"P": {"dno": ["bad.txt"]}}}, tmp_path)
    message = str(e.value)
    assert "lists.partners.P.dno" in message and "bad.txt:2:" in message and "bad.txt:6:" in message
    assert "bad.txt:7:" not in message and "(and 6 more bad lines)" in message


@pytest.mark.parametrize("config, says", [
    ({"block": ["missing.txt"]}, r"lists\.block: cannot read .*missing\.txt"),
    ({"block": "block.txt"}, r"lists\.block must be a list"),
    ({"blocks": []}, r"unknown key"),
    ({"partners": {"P": {"alow": []}}}, r"lists\.partners\.P: unknown key"),
    ({"partners": ["P"]}, r"lists\.partners must map"),
    ({"partners": {"P": ["x"]}}, r"lists\.partners\.P must be a mapping"),
    ({"allow": [42]}, r"lists\.allow: a file path must be a str"),
    (["block.txt"], r"lists must be a mapping"),
    ({"partners": {"global": {}}}, r"'global' cannot name a partner"),
])
def test_configuration_mistakes(tmp_path, config, says):
    with pytest.raises(ConfigError, match=says):
        Lists.from_config(config, tmp_path)


def test_a_directory_is_an_unreadable_file(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(ConfigError, match=r"lists\.dno: cannot read"):
        Lists.from_config({"dno": ["d"]}, tmp_path)


def test_files_version_and_stats(tmp_path):
    lists = _lists(tmp_path, block="0612345678\n0612345678\n06*", allow="0162000000-0162000009",
                   partners={"P": {"dno": "0612345679"}})
    assert set(lists.files) == {tmp_path / "block.txt", tmp_path / "allow.txt", tmp_path / "P-dno.txt"}
    assert lists.version["numbers"] == 3 and lists.version["prefixes"] == 1 and lists.version["ranges"] == 1
    assert len(lists.version["digest"]) == 12
    stats = lists.stats()
    assert stats["lists"]["global.block"] == {"numbers": 2, "prefixes": 1, "ranges": 0}
    assert stats["lists"]["P.dno"]["numbers"] == 1 and stats["files"] == 3 and stats["bytes"] > 0
    assert stats["distinct_numbers"] == 2
    (tmp_path / "allow.txt").write_text("0162000000-0162000008")
    again = Lists.from_config({"block": ["block.txt"], "allow": ["allow.txt"], "partners": {"P": {"dno": ["P-dno.txt"]}}}, tmp_path)
    assert again.version["digest"] != lists.version["digest"]


def test_reload_swaps_in_a_good_file_and_keeps_the_old_lists_on_a_bad_one(tmp_path, caplog):
    path = tmp_path / "block.txt"
    path.write_text("0612345678\n")
    config = {"block": ["block.txt"]}
    watch = ListsWatch(config, tmp_path, background=False)
    config["block"].append("other.txt")  # the caller's later edits do not count
    assert watch.match("33612345678", None, NOW).block and not watch.check()
    _replace(path, "0612345679\n")
    assert watch.check()
    assert watch.match("33612345678", None, NOW) is NO_HITS and watch.match("33612345679", None, NOW).block
    good = watch.lists
    with caplog.at_level(logging.WARNING, logger="manverify.reload"):
        _replace(path, "0612345670\n0612345671\nnot a number\n")
        assert not watch.check()
    assert watch.lists is good and watch.match("33612345679", None, NOW).block
    assert watch.match("33612345670", None, NOW) is NO_HITS
    stats = watch.stats()
    assert stats["reloads"] == 1 and stats["failures"] == 1 and "block.txt:3:" in stats["last_error"]
    assert any("screening lists changed but cannot be used" in r.getMessage() and "block.txt:3" in r.getMessage()
               for r in caplog.records)
    path.unlink()
    assert not watch.check() and watch.match("33612345679", None, NOW).block  # a vanished file too
    _replace(path, "0612345670\n")
    assert watch.check() and watch.match("33612345670", None, NOW).block and watch.stats()["last_error"] == ""
    assert watch.files == (path,) and watch.version == watch.lists.version


def test_a_bad_list_at_start_is_a_config_error(tmp_path):
    (tmp_path / "block.txt").write_text("oops")
    with pytest.raises(ConfigError, match="block.txt:1"):
        ListsWatch({"block": ["block.txt"]}, tmp_path, background=False)


def test_calls_during_reloads_see_the_old_lists_or_the_new_never_a_mix(tmp_path):
    """Two generations: A blocks and allows the even numbers, B the odd ones; a call that sees a
    block from one generation and an allow from the other saw a mix."""
    path_b, path_a = tmp_path / "block.txt", tmp_path / "allow.txt"
    gen = {0: "\n".join(f"06123456{i:02d}" for i in range(0, 100, 2)),
           1: "\n".join(f"06123456{i:02d}" for i in range(1, 100, 2))}
    path_b.write_text(gen[0])
    path_a.write_text(gen[0])
    watch = ListsWatch({"block": ["block.txt"], "allow": ["allow.txt"]}, tmp_path, background=False)
    stop, seen, problems = threading.Event(), set(), []

    def calls():
        while not stop.is_set():
            lists = watch.lists
            for i in range(100):
                hits = lists.match(f"336123456{i:02d}", None, NOW)
                if (hits.block is None) != (hits.allow is None):
                    problems.append(i)
                if hits.block:
                    seen.add(i % 2)

    t = threading.Thread(target=calls)
    t.start()
    try:
        for r in range(1, 13):
            _replace(path_b, gen[r % 2])
            _replace(path_a, gen[r % 2])
            assert watch.check()
    finally:
        stop.set()
        t.join()
    assert not problems and watch.stats()["reloads"] == 12 and seen


# A plain-Python reference: what a list says, read with tn and str.startswith.

_NUMBER = st.from_regex(r"33[1-9][0-9]{3}", fullmatch=True) | st.from_regex(r"[1-9][0-9]{0,5}", fullmatch=True)


@st.composite
def _entries(draw):
    kind = draw(st.sampled_from(["number", "prefix", "range"]))
    n = draw(_NUMBER)
    if kind == "number":
        data = (n,)
    elif kind == "prefix":
        data = (n[: draw(st.integers(1, len(n)))],)
    else:
        other = draw(st.integers(0, 10 ** len(n) - 1))
        lo, hi = sorted((int(n), other))
        if len(str(lo)) != len(n):
            lo = int(n)
        data = (str(lo), str(hi).zfill(len(n)) if len(str(hi)) <= len(n) else n)
        data = tuple(sorted(data, key=int))
    expiry = draw(st.sampled_from([0, 0, NOW - 10, NOW + 10]))
    return kind, data, expiry


def _reference(entries, number, scope_of, partner, now):
    """entries: [(list, scope, kind, data, expiry, line)]; the live entries matching."""
    out = []
    for lname, scope, kind, data, expiry, line in entries:
        if scope not in ("global", partner) or (expiry and now >= expiry):
            continue
        if (kind == "number" and number == data[0]) or (kind == "prefix" and number.startswith(data[0])) or (
                kind == "range" and len(number) == len(data[0]) and int(data[0]) <= int(number) <= int(data[1])):
            out.append((lname, scope, kind, line))
    return out


_ORDER = {"number": 0, "range": 1, "prefix": 2}


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["block", "allow", "dno"]), st.sampled_from(["global", "P", "Q"]), _entries()),
                max_size=30),
       st.lists(_NUMBER, min_size=1, max_size=20), st.sampled_from([None, "P", "Q", "R"]))
def test_match_agrees_with_a_plain_python_reference(spec, queries, partner):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        by_file, entries = {}, []
        for lname, scope, (kind, data, expiry) in spec:
            lines = by_file.setdefault((lname, scope), [])
            text = data[0] if kind == "number" else data[0] + "*" if kind == "prefix" else f"{data[0]}-{data[1]}"
            if expiry:
                text += f" expires={datetime.fromtimestamp(expiry, timezone.utc):%Y-%m-%dT%H:%M:%S}Z"
            lines.append(text)
            entries.append((lname, scope, kind, data, expiry, f"{tmp / f'{scope}-{lname}.txt'}:{len(lines)}"))
        config = {"partners": {}}
        for (lname, scope), lines in by_file.items():
            (tmp / f"{scope}-{lname}.txt").write_text("\n".join(lines))
            section = config if scope == "global" else config["partners"].setdefault(scope, {})
            section[lname] = [f"{scope}-{lname}.txt"]
        lists = Lists.from_config(config, tmp)
        for number in queries + [e[3][0] for e in entries]:
            for now in (NOW, NOW - 20, NOW + 20):
                want = _reference(entries, number, None, partner, now)
                got = lists.match(number, partner, now)
                for lname in ("block", "allow", "dno"):
                    hit = getattr(got, lname)
                    candidates = [w for w in want if w[0] == lname]
                    if not candidates:
                        assert hit is None, (number, lname, hit)
                        continue
                    assert hit is not None and hit.list == lname, (number, lname, candidates)
                    assert (lname, hit.scope, hit.entry, hit.source) in candidates
                    assert _ORDER[hit.entry] == min(_ORDER[c[2]] for c in candidates)


# The table underneath, at a scale a test can afford; benches/bench_screen_lists.py measures 10 M.

@given(st.lists(st.integers(0, 2 ** 54 - 1) | st.integers(0, 50), max_size=300))
def test_stable_order_is_a_stable_argsort(values):
    x = np.array(values, dtype=np.uint64)
    assert stable_order(x).tolist() == np.argsort(x, kind="stable").tolist()


@pytest.mark.parametrize("compact", [False, True])
def test_a_table_of_200k_numbers_finds_each_one_and_nothing_else(monkeypatch, compact):
    if compact:  # the 4-byte entries used from 4 M numbers on
        monkeypatch.setattr(NumberTable, "COMPACT_FROM", 1000)
    rng = np.random.default_rng(7)
    keys = (np.uint64(11 * 10 ** 15 + 33 * 10 ** 9) + rng.integers(0, 10 ** 9, 200_000).astype(np.uint64))
    keys[100:200] = keys[:100]  # duplicates
    origin = np.arange(1, len(keys) + 1, dtype=np.uint32)
    table = NumberTable.build(keys, origin, None, None)
    assert (table._res.dtype == np.uint32) == compact
    assert table.size == len(np.unique(keys))
    for k in keys[:300].tolist():
        (i,) = table.find(k)
        assert table.origin[i] == origin[keys == k].min()
    absent = np.setdiff1d(rng.integers(0, 10 ** 9, 5000).astype(np.uint64) + np.uint64(11 * 10 ** 15 + 33 * 10 ** 9), keys)
    assert all(not table.find(k) for k in absent[:300].tolist())
    found = table.find_many(np.concatenate([keys[:5000], absent]))
    assert (found[:5000] >= 0).all() and (found[5000:] == -1).all()
    assert (table.origin[found[:5000]] == [origin[keys == k].min() for k in keys[:5000]]).all()


def test_a_list_of_100k_numbers_in_mixed_forms(tmp_path):
    rng = np.random.default_rng(3)
    nat = rng.integers(61 * 10 ** 7, 63 * 10 ** 7, 100_000)  # 061..., 062...: never overseas
    forms = ["0{}", "+33{}", "33{}", "+33 {}", "0{}  expires=2030-01-01"]
    lines = [forms[i % 5].format(v) for i, v in enumerate(nat.tolist())]
    (tmp_path / "big.txt").write_text("\n".join(lines) + "\n0800*\n")
    lists = Lists.from_config({"dno": ["big.txt"]}, tmp_path)
    for i in rng.integers(0, len(lines), 500).tolist():
        hit = lists.match(f"33{nat[i]}", None, NOW).dno
        assert hit.entry == "number" and int(hit.source.rsplit(":", 1)[1]) - 1 in np.flatnonzero(nat == nat[i])
    assert lists.match("33800000000", None, NOW).dno.entry == "prefix"
    line = lines.index(next(x for x in lines if "expires" in x)) + 1
    assert lists.match(f"33{nat[line - 1]}", None, 1_900_000_000).dno is None or (nat == nat[line - 1]).sum() > 1
    assert lists.version["numbers"] == 100_000


def test_a_table_without_origins_is_a_set_of_numbers():
    keys = np.array([key("33612345678"), key("33612345678"), key("3179"), key("590690123456")], dtype=np.uint64)
    table = NumberTable.build(keys.copy(), consume=True)
    assert table.size == 3 and table.origin is None
    assert all(table.find(k) for k in keys.tolist()) and not table.find(key("33612345679"))
    assert (table.find_many(np.array([key("3179"), key("31790")], dtype=np.uint64)) >= 0).tolist() == [True, False]


def test_no_lists_and_empty_files_match_nothing(tmp_path):
    assert Lists.from_config({}).match("33612345678", None, NOW) is NO_HITS
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "comments.txt").write_text("# nothing yet\n\n")
    lists = Lists.from_config({"block": ["empty.txt"], "allow": ["comments.txt"]}, tmp_path)
    assert lists.match("33612345678", "P", NOW) is NO_HITS and lists.version["numbers"] == 0


def test_the_ticker_reloads_changed_lists_in_the_background(tmp_path):
    import time

    from manverify import ticker

    (tmp_path / "dno.txt").write_text("0612345678\n")
    watch = ListsWatch({"dno": ["dno.txt"]}, tmp_path)
    _replace(tmp_path / "dno.txt", "0612345679\n")
    deadline = time.monotonic() + 10
    while watch.match("33612345679", None, NOW).dno is None and time.monotonic() < deadline:
        ticker.run_once()
        time.sleep(0.05)
    assert watch.match("33612345679", None, NOW).dno and watch.stats()["reloads"] == 1


def test_the_head_filters_skip_no_entry(tmp_path):
    """The first digits every prefix and range shares are checked before the segments are: a
    filter that said no for a number under an entry would lose its hit."""
    lists = _lists(tmp_path, block="0162*\n01630*\n+44 20*\n0164000000-0164099999\n0165123400-0165123499")
    assert lists._prefix_heads[0] == 4 and lists._range_heads[0] == 6
    for n, kind in [("33162123456", "prefix"), ("33163012345", "prefix"), ("442079460018", "prefix"),
                    ("33164012345", "range"), ("33165123456", "range")]:
        assert lists.match(n, None, NOW).block.entry == kind
    for n in ("33163123456", "33164123456", "33165123500", "442", "331"):
        assert lists.match(n, None, NOW) is NO_HITS
