"""Scrubbing call files (manverify scrub): column choice, delimiters, every number form, bad rows
with their line numbers, opposition files in the list syntax, duplicates, the summary, exit codes,
and a 100 k row run against a plain-Python reference."""
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from manverify import cli, tn
from manverify.errors import UsageError
from manverify.screen import scrub as sc
from manverify.screen.numtable import LBASE

ROOT = Path(__file__).resolve().parents[1]
NOW = 1_800_000_000  # 2027-01-15


def _opp(tmp_path, text, name="opp.txt"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return sc.load_opposition(p, now=NOW)


def _scrub(text, files, **kw):
    out, err = io.StringIO(), io.StringIO()
    summary = sc.scrub(io.StringIO(text, newline=""), out, files, err=err, name="c.csv", **kw)
    return out.getvalue(), summary, err.getvalue()


def _cli(tmp_path, *args, stdin=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "manverify", "scrub", *map(str, args)], input=stdin,
                          capture_output=True, env=env, cwd=tmp_path, timeout=120)


# ---------------------------------------------------------------- columns and delimiters
@pytest.mark.parametrize("header, column, expected", [
    ("id,number,name", None, "number"),
    ("id,Name,Téléphone", None, "Téléphone"),
    ("id,NUMERO,phone", None, "phone"),  # the list's order: number, phone, telephone, numero, tel
    ("\ufeffTel,name", None, "Tel"),
    ("id,Phone number,name", None, "Phone number"),
    ("id,mobile,home", "Home", "home"),
])
def test_the_number_column_is_chosen_by_name(tmp_path, header, column, expected):
    ncols = header.count(",") + 1
    col = [sc.fold(h) for h in header.split(",")].index(sc.fold(expected))
    row = ["x"] * ncols
    row[col] = "0612345678"
    text = f"{header}\n{','.join(row)}\n"
    out, s, _ = _scrub(text, [_opp(tmp_path, "0612345678\n")], column=column)
    assert s.column == expected and s.rows == 1 and s.written == 0
    assert out == header + "\n"


def test_no_number_column_or_no_header_is_a_usage_error_naming_the_columns(tmp_path):
    with pytest.raises(UsageError, match=r"no number column.*\['id', 'name'\]"):
        _scrub("id,name\n1,x\n", [])
    with pytest.raises(UsageError, match=r"--column 'fax': no such column"):
        _scrub("id,phone\n1,0612345678\n", [], column="fax")
    with pytest.raises(UsageError, match="no header"):
        _scrub("", [])


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_the_delimiter_is_read_from_the_header(tmp_path, delimiter):
    d = delimiter
    text = f'id{d}nom{d}telephone\r\n1{d}"Martin{d} Jr"{d}0612345678\r\n2{d}"Dupont"{d}0612345679\r\n'
    out, s, _ = _scrub(text, [_opp(tmp_path, "0612345678\n")])
    assert s.delimiter == delimiter and s.written == 1
    # the kept rows are the input's own lines: quotes and CR LF as they were
    assert out == f'id{d}nom{d}telephone\r\n2{d}"Dupont"{d}0612345679\r\n'


# ---------------------------------------------------------------- numbers
FORMS = ["0612345678", "06 12 34 56 78", "06.12.34.56.78", "06-12-34-56-78", "+33612345678",
         "+33 6 12 34 56 78", "+33 (0)6 12 34 56 78", "0033612345678", "0033 6 12 34 56 78", "33612345678",
         "tel:+33-6-12-34-56-78", "sip:+33612345678@example.com", " 0612345678 ", "06\u00a012\u00a034 56 78",
         "(06) 12 34 56 78", "+33.6.12.34.56.78", "0 6 1 2 3 4 5 6 7 8"]


@pytest.mark.parametrize("form", FORMS)
def test_every_common_form_of_a_listed_number_is_removed(tmp_path, form):
    text = f'id;telephone\n1;"{form}"\n2;0612345679\n'
    out, s, err = _scrub(text, [_opp(tmp_path, "0612345678\n")])
    assert (s.written, s.bad, err) == (1, 0, "")
    assert out == 'id;telephone\n2;0612345679\n'


def test_numbers_are_read_as_tn_canonical_reads_them():
    forms = FORMS + ["0590123456", "0690123456", "+44 20 7946 0018", "004420 7946 0018", "+1 202 555 0143",
                     "0262 12 34 56", "0800123456", "+590690123456"]
    keys, bad = sc.number_keys(forms)
    assert bad == []
    expected = [tn.canonical(f.replace("(0)", "")) for f in forms]
    assert [sc.digits_of(k) for k in keys.tolist()] == expected


@pytest.mark.parametrize("text, why", [
    ("", "no number"), ("  ", "no number"), ("abc", "not a telephone number"), ("06 12 34 56 7x", "not a telephone"),
    ("612345678", "9 digits without a leading 0 or +"), ("12345", "too short"),
    ("+33 06 12 34 56 78", "+33 followed by 0"), ("*31#0612345678", "digits only"),
    ("06 12 34 56 78 90", "neither a national number"), ("0612345678901234567", "more than 15 digits"),
])
def test_what_is_not_a_callable_number_is_a_bad_row(text, why):
    keys, bad = sc.number_keys(["0612345678", text])
    assert keys[0] != 0 and keys[1] == 0
    assert len(bad) == 1 and bad[0][0] == 1 and why in bad[0][1]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="0123456789+ .-()/[]\t#*x:;@\u00a0\r\n", max_size=22), min_size=1, max_size=6))
def test_a_number_is_what_tn_canonical_reads_or_a_bad_row_never_another_number(texts):
    keys, bad = sc.number_keys(texts)
    bad = dict(bad)
    for i, text in enumerate(texts):
        if i in bad:
            assert keys[i] == 0
            continue
        digits = tn.canonical(sc._TRUNK.sub(r"\1", text))  # noqa: SLF001 - the "(0)" rule
        assert sc.digits_of(keys[i]) == digits and len(digits) >= sc.MIN_DIGITS and digits[0] != "0"


def test_bad_rows_are_reported_with_their_line_numbers_and_never_written(tmp_path):
    text = ('id;nom;telephone\n'
            '1;a;0612345670\n'
            '2;b;\n'  # line 3: no number
            '3;"two\nlines";0612345671\n'  # lines 4-5: a good record over two lines
            '3b;"two\nlines";nope\n'  # lines 6-7: a bad one, reported on its first line
            '4;c;abc\n'  # line 8
            '5;d\n'  # line 9: a field missing
            '\n'  # line 10: blank, counted apart
            '6;e;0612345672;extra\n'  # line 11
            '7;f;612345673\n'  # line 12
            '8;"' + 'g' * 200_000 + '";0612345674\n'  # line 13: over csv's field size limit
            '9;h;0612345675\n')
    out, s, err = _scrub(text, [])
    assert out == 'id;nom;telephone\n1;a;0612345670\n3;"two\nlines";0612345671\n9;h;0612345675\n'
    assert s.bad_lines == (3, 6, 8, 9, 11, 12, 13)
    assert (s.rows, s.written, s.bad, s.blank_lines) == (10, 3, 7, 1)
    assert err.splitlines()[0] == "c.csv:3: no number"
    assert [line.split(":")[1] for line in err.splitlines()] == ["3", "6", "8", "9", "11", "12", "13"]
    assert s.bad_reasons == {"no number": 1, "not a telephone number": 2, "wrong number of fields": 2,
                             "9 digits without a leading 0 or +": 1, "not CSV": 1}


# ---------------------------------------------------------------- opposition files
def test_opposition_files_take_the_list_syntax(tmp_path):
    opp = _opp(tmp_path, "\ufeff# Bloctel extract\n0612345678  # a comment\n+33 6 12 34 56 79\n"
                         "0162*\n0700000000-0700000099\n0612345690 expires=2026-01-01\n"
                         "0612345691 expires=2030-01-01\n0590123456\n")
    assert opp.counts == {"numbers": 4, "prefixes": 1, "ranges": 1, "expired": 1, "lines": 8}
    numbers = ["0612345678", "0612345679", "0162999999", "0700000050", "0700000100", "0612345690",
               "0612345691", "0590123456", "0690123456", "0612345680"]
    text = "telephone\n" + "\n".join(numbers) + "\n"
    out, s, _ = _scrub(text, [opp])
    assert out.split() == ["telephone", "0700000100", "0612345690", "0690123456", "0612345680"]
    assert s.opposition == {str(tmp_path / "opp.txt"): 6}


def test_a_row_removed_by_several_files_counts_for_the_first_named(tmp_path):
    a = _opp(tmp_path, "0612345678\n", "bloctel.txt")
    b = _opp(tmp_path, "0612345678\n0612345679\n", "red.txt")
    _, s, _ = _scrub("tel\n0612345678\n0612345679\n0612345670\n", [a, b])
    assert s.opposition == {a.path: 1, b.path: 1} and s.written == 1


def test_a_bad_or_missing_opposition_file_is_a_usage_error_naming_file_and_line(tmp_path):
    (tmp_path / "bad.txt").write_text("0612345678\nnot a number\n0612345679\n06x*\n")
    with pytest.raises(UsageError, match=r"bad\.txt:2: .*bad\.txt:4: "):
        sc.load_opposition(tmp_path / "bad.txt")
    with pytest.raises(UsageError, match=r"cannot read opposition file .*missing\.txt"):
        sc.load_opposition(tmp_path / "missing.txt")


def test_an_opposition_file_larger_than_its_first_guess_and_than_a_read_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(sc, "READ_CHUNK", 4096)
    numbers = [f"{x}" for x in range(33600000000, 33600020000)]  # 12 bytes a line: more than size // 11
    (tmp_path / "o.txt").write_text("\n".join(numbers))  # no final line end
    opp = sc.load_opposition(tmp_path / "o.txt")
    assert opp.counts["numbers"] == 20000 and opp.counts["lines"] == 20000
    assert np.array_equal(opp.keys, np.sort(np.array([LBASE[11] + int(n) for n in numbers], np.uint64)))


# ---------------------------------------------------------------- duplicates
def test_the_first_row_of_a_number_is_written_and_later_ones_counted(tmp_path, monkeypatch):
    monkeypatch.setattr(sc, "CHUNK_ROWS", 3)  # duplicates within a chunk and across chunks
    rows = ["1;0612345678", "2;06 12 34 56 78", "3;0612345679", "4;0612345670", "5;+33612345679",
            "6;0612345671", "7;0612345678"]
    text = "id;tel\n" + "\n".join(rows) + "\n"
    out, s, _ = _scrub(text, [])
    assert out.split() == ["id;tel", "1;0612345678", "3;0612345679", "4;0612345670", "6;0612345671"]
    assert s.duplicates == 3
    out, s, _ = _scrub(text, [], dedupe=False)
    assert s.duplicates == 0 and s.written == 7


# ---------------------------------------------------------------- the command
def _write(tmp_path, name, text):
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path / name


def test_cli_writes_the_callable_rows_and_a_json_summary(tmp_path):
    _write(tmp_path, "opp.txt", "0612345678\n")
    _write(tmp_path, "c.csv", "id;telephone;ville\n1;0612345678;Paris\n2;0612345679;Lyon\n3;0612345679;Nice\n")
    p = _cli(tmp_path, "c.csv", "--opposition", "opp.txt", "-o", "out.csv", "--summary", "s.json")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "out.csv").read_text() == "id;telephone;ville\n2;0612345679;Lyon\n"
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["rows"] == 3 and s["written"] == 1
    assert s["removed"] == {"opposition": 1, "by_file": {"opp.txt": 1}, "customer": {}, "duplicates": 1}
    assert s["bad"] == {"count": 0, "by_reason": {}, "lines": [], "first": []}
    assert s["opposition_files"] == {"opp.txt": {"numbers": 1, "prefixes": 0, "ranges": 0, "expired": 0, "lines": 1}}
    assert b"3 rows: 1 written; removed: opposition 1 (opp.txt: 1), duplicates 1" in p.stderr


def test_cli_bad_rows_exit_1_and_stdin_to_stdout(tmp_path):
    _write(tmp_path, "opp.txt", "0612345678\n")
    p = _cli(tmp_path, "-", "--opposition", "opp.txt", "--summary", "s.json",
             stdin="tel,nom\n0612345679,Müller\nnope,x\n".encode())
    assert p.returncode == 1
    assert p.stdout.decode() == "tel,nom\n0612345679,Müller\n"
    assert b"stdin:3: not a telephone number: 'nope'" in p.stderr
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["bad"]["lines"] == [3] and s["bad"]["first"] == [{"line": 3, "error": "not a telephone number: 'nope'"}]


def test_cli_keeps_bytes_that_are_not_utf8_and_reads_a_windows_1252_header(tmp_path):
    _write(tmp_path, "opp.txt", "0612345678\n")
    text = "nom;Numéro\nLéa;0612345679\nZoé;0612345678\n".encode("cp1252")  # as spreadsheets write
    (tmp_path / "c.csv").write_bytes(text)
    p = _cli(tmp_path, "c.csv", "--opposition", "opp.txt")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "nom;Numéro\nLéa;0612345679\n".encode("cp1252")


@pytest.mark.parametrize("args, message", [
    (["c.csv", "--opposition", "missing.txt"], b"cannot read opposition file missing.txt"),
    (["c.csv", "--opposition", "bad.txt"], b"bad.txt:2: "),
    (["c.csv"], b"scrub needs --opposition"),
    (["c.csv", "--opposition", "opp.txt", "--customer", "acme"], b"--customer and --config go together"),
    (["c.csv", "--opposition", "opp.txt", "--column", "fax"], b"--column 'fax'"),
    (["nothere.csv", "--opposition", "opp.txt"], b"cannot read nothere.csv"),
])
def test_cli_usage_and_configuration_errors_exit_2_and_write_no_output(tmp_path, args, message):
    _write(tmp_path, "opp.txt", "0612345678\n")
    _write(tmp_path, "bad.txt", "0612345678\nbad\n")
    _write(tmp_path, "c.csv", "tel\n0612345679\n")
    p = _cli(tmp_path, *args, "-o", "out.csv")
    assert p.returncode == 2 and message in p.stderr, p.stderr
    assert not (tmp_path / "out.csv").exists()
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith(".out.csv")] == []


def test_cli_in_process(tmp_path, capsysbinary):
    _write(tmp_path, "opp.txt", "0612345678\n")
    _write(tmp_path, "c.csv", "tel\n0612345678\n0612345679\n")
    assert cli.main(["scrub", str(tmp_path / "c.csv"), "--opposition", str(tmp_path / "opp.txt")]) == 0
    assert capsysbinary.readouterr().out == b"tel\n0612345679\n"


def test_cli_with_stdout_closed_from_the_start_exits_141(tmp_path):
    _write(tmp_path, "opp.txt", "0612345678\n")
    _write(tmp_path, "c.csv", "tel\n0612345679\n")
    p = subprocess.run(f"{sys.executable} -m manverify scrub c.csv --opposition opp.txt >&-", shell=True,
                       cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=False,
                       stderr=subprocess.PIPE, timeout=120)
    assert p.returncode == 141 and p.stderr == b""


def test_cli_closed_pipe_exits_141(tmp_path):
    _write(tmp_path, "opp.txt", "0612345678\n")
    _write(tmp_path, "c.csv", "tel\n" + "".join(f"06{x:08d}\n" for x in range(20000, 120000)))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-m", "manverify", "scrub", "c.csv", "--opposition", "opp.txt"],
                         cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline() == b"tel\n"
    p.stdout.close()
    assert p.wait(timeout=120) == 141
    assert p.stderr.read() == b""  # quietly, as a program SIGPIPE ended
    p.stderr.close()


# ---------------------------------------------------------------- scale (functional, no timing)
def test_100k_contacts_against_100k_opposition_numbers_agree_with_a_plain_python_reference(tmp_path):
    sys.path.insert(0, str(ROOT / "benches"))
    try:
        import scrub_bench
    finally:
        sys.path.remove(str(ROOT / "benches"))
    scrub_bench.make_files(tmp_path, 100_000, 100_000)
    p = _cli(tmp_path, "contacts.csv", "--opposition", "opp.txt", "-o", "out.csv", "--summary", "s.json")
    assert p.returncode == 0, p.stderr
    blocked = {tn.canonical(line.strip()) for line in open(tmp_path / "opp.txt")}
    expected, seen = [], set()
    with open(tmp_path / "contacts.csv", newline="") as f:
        for row in csv.reader(f, delimiter=";"):
            if row[0] == "id":
                expected.append(row[0])
                continue
            number = tn.canonical(row[2])
            if number not in blocked and number not in seen:
                seen.add(number)
                expected.append(row[0])
    with open(tmp_path / "out.csv", newline="") as f:
        written = [row[0] for row in csv.reader(f, delimiter=";")]
    assert written == expected
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["rows"] == 100_000 and s["written"] == len(expected) - 1 and s["bad"]["count"] == 0
    assert s["removed"]["opposition"] > 40_000 and s["removed"]["duplicates"] > 0


# ---------------------------------------------------------------- the customer's rules
def test_the_customers_rules_remove_rows_after_the_opposition_files_and_before_duplicates(tmp_path):
    asked = []

    def status(dests):  # what Screen.outbound_status_many would say, through customer_status()
        asked.append(list(dests))
        why = {"33612345671": "refused", "33612345672": "repeat limit", "33612345673": "customer opposition"}
        return [why.get(d) for d in dests]

    text = "tel\n0612345670\n0612345671\n0612345672\n0612345673\n0612345674\n0612345674\n06 12 34 56 71\n"
    out, s, _ = _scrub(text, [_opp(tmp_path, "0612345670\n")], status=status)
    assert out.split() == ["tel", "0612345674"]
    assert s.customer == {"refused": 2, "repeat limit": 1, "customer opposition": 1}
    assert (s.opposition[str(tmp_path / "opp.txt")], s.duplicates) == (1, 1)
    assert asked == [sorted(["33612345671", "33612345672", "33612345673", "33612345674", "33612345674",
                             "33612345671"])]  # one batch a chunk, the opposition's rows not asked about
    assert "refused 2" in s.text() and s.to_dict()["removed"]["customer"]["repeat limit"] == 1
