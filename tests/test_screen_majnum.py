"""manverify.screen.majnum: Arcep's MAJNUM file read in its real format, and refreshed without ever
replacing a good table by a truncated or garbled download."""
import logging
import os
import shutil
from pathlib import Path

import pytest

from manverify.errors import ConfigError
from manverify.screen.majnum import HEADER, Majnum, MajnumSource
from manverify.tn import canonical

FIXTURES = Path(__file__).parent / "fixtures" / "majnum"
GOOD = FIXTURES / "MAJNUM.csv"


def test_fixtures_are_in_arceps_format():
    data = GOOD.read_bytes()
    assert data.startswith("EZABPQM;Tranche_Debut;Tranche_Fin;Mn\xe9mo;Territoire;Date_Attribution\r\n".encode("latin-1"))
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # cp1252, as Arcep publishes it


@pytest.fixture(scope="module")
def majnum():
    return Majnum.load(GOOD)


@pytest.mark.parametrize("number, holder", [
    ("0105600000", "FRTE"), ("0105699999", "FRTE"), ("0105700000", "SFR0"),
    ("0162000999", "OXIL"), ("0162001000", "UBIC"),  # one thousand-number sub-block after another
    ("0612399999", "SFR0"), ("0612400000", "FREE"),
    ("0590001234", "FRTE"), ("0690901234", "OUTR"), ("0692001234", "SRR0"), ("0639301234", "SRR0"),
    ("0269601234", "FRTE"), ("0947501234", "OUTR"), ("0976001234", "OUTR"),
    ("+33 7 00 12 34 56 78 90", "SIER"),  # 14-digit M2M numbers
    ("3949", "FTPE"), ("118712", "FRTE"), ("116000", "FRTE"), ("1014", "FRTE"),
])
def test_holder_of_assigned_numbers(majnum, number, holder):
    assert majnum.holder(canonical(number)) == holder


@pytest.mark.parametrize("e164", [
    "33105599999", "33105800000", "33162002000", "33612600000",  # just outside assigned ranges
    "33590001234",  # Guadeloupe's range shown under +33 is no number of that range
    "3948", "118713", "3394", "441632960123", "", "abc", "３３６１２３４５６７８", "33612345678" * 3,
])
def test_unassigned_or_no_number(majnum, e164):
    assert majnum.holder(e164) is None


def test_holder_never_raises_for_any_input(majnum):
    for x in (None, 33612345678, b"33612345678", "-1", "+33612345678", " 33612345678", "1_000", "9" * 40):
        assert majnum.holder(x) is None


def test_counts_and_version(majnum):
    assert majnum.ranges == 50 and majnum.errors == ()
    assert majnum.version.startswith("MAJNUM.csv ") and "2737B" in majnum.version
    assert majnum.sha256[:12] in majnum.version and len(majnum.sha256) == 64


def test_garbage_lines_at_start_are_a_config_error_naming_file_and_line():
    with pytest.raises(ConfigError) as e:
        Majnum.load(FIXTURES / "garbage.csv")
    text = str(e.value)
    assert "4 unreadable line(s)" in text
    for line in (11, 12, 13, 14):
        assert f"garbage.csv:{line}:" in text
    assert "502 Bad Gateway" in text


def test_truncated_download_is_an_error_at_its_cut_line():
    m = Majnum.load(FIXTURES / "truncated.csv", strict=False)
    assert [e.line for e in m.errors] == [30]
    with pytest.raises(ConfigError, match="truncated.csv:30"):
        Majnum.load(FIXTURES / "truncated.csv")


def test_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the MAJNUM file"):
        Majnum.load(tmp_path / "missing.csv")


@pytest.mark.parametrize("body, message", [
    ("", "not the MAJNUM header"),
    ("EZABPQM;Debut;Fin\n", "not the MAJNUM header"),
    (";".join(HEADER) + "\n0106;0105600000;0105699999;FRTE;Métropole;01/01/2017\n", "not the block"),
    (";".join(HEADER) + "\n01056;0105600000;01056999999;FRTE;Métropole;01/01/2017\n", "not a range"),
    (";".join(HEADER) + "\n01056;0105600000;0105699999;;Métropole;01/01/2017\n", "no Mnémo"),
    (";".join(HEADER) + "\n0;0590000000;0594999999;FRTE;Guadeloupe;01/01/2017\n", "spans two country codes"),
    (";".join(HEADER) + "\n01056;0105600000;0105699999;FRTE;Métropole;01/01/2017\n"
     "0105;0105650000;0105659999;SFR0;Métropole;01/01/2018\n", "overlaps the range of line 2"),
])
def test_each_kind_of_bad_line_is_named(tmp_path, body, message):
    f = tmp_path / "MAJNUM.csv"
    f.write_bytes(body.encode("cp1252"))
    with pytest.raises(ConfigError, match=message):
        Majnum.load(f)


def test_the_same_range_twice_and_blank_lines_are_harmless(tmp_path):
    line = "01056;0105600000;0105699999;FRTE;Métropole;01/01/2017"
    f = tmp_path / "MAJNUM.csv"
    f.write_bytes("\n".join([";".join(HEADER), line, "", line, "3949;3949;3949;FTPE;National;01/01/2008;"]).encode("cp1252"))
    m = Majnum.load(f)
    assert m.ranges == 2 and m.holder("33105612345") == "FRTE" and m.holder("3949") == "FTPE"


def test_a_file_saved_again_as_utf8_still_reads(tmp_path):
    f = tmp_path / "MAJNUM.csv"
    f.write_bytes(b"\xef\xbb\xbf" + GOOD.read_bytes().decode("cp1252").encode("utf-8"))
    assert Majnum.load(f).ranges == 50


def test_plausibility(majnum):
    assert Majnum.load(FIXTURES / "updated.csv").plausible_after(majnum) is None
    assert "fewer than 90% of the 50 in use" in Majnum.load(FIXTURES / "small.csv").plausible_after(majnum)
    assert "unreadable" in Majnum.load(FIXTURES / "garbage.csv", strict=False).plausible_after(majnum)
    assert "unreadable" in Majnum.load(FIXTURES / "truncated.csv", strict=False).plausible_after(majnum)
    assert Majnum.load(FIXTURES / "small.csv").plausible_after(None) is None  # nothing in use yet
    assert Majnum.load(FIXTURES / "small.csv").plausible_after(majnum, min_ratio=0.2) is None


def _replace(path: Path, source: Path) -> None:
    """How a daily download lands: written next to the file, renamed over it."""
    tmp = path.with_name(path.name + ".part")
    shutil.copyfile(source, tmp)
    os.replace(tmp, path)


def test_source_refuses_implausible_files_and_keeps_the_table(tmp_path, caplog):
    path = tmp_path / "MAJNUM.csv"
    shutil.copyfile(GOOD, path)
    src = MajnumSource(path, background=False)
    assert (src.loads, src.refusals, src.last_error) == (1, 0, "")
    first = src.table
    assert not src.check()  # nothing changed

    for bad, why in (("truncated.csv", "MAJNUM.csv:30: Date_Attribution"), ("small.csv", "10 ranges, fewer than 90%"),
                     ("garbage.csv", "4 unreadable line(s)")):
        _replace(path, FIXTURES / bad)
        with caplog.at_level(logging.WARNING, logger="manverify.reload"):
            assert not src.check()
        assert src.table is first  # the old table stays
        assert src.holder("33105612345") == "FRTE" and src.holder("3949") == "FTPE"
        assert why in src.last_error
        assert "refused, keeping MAJNUM.csv" in caplog.text
    assert (src.loads, src.refusals) == (1, 3)

    path.unlink()  # gone between two looks: refused too, table kept
    assert not src.check() and src.table is first and src.refusals == 4

    _replace(path, FIXTURES / "updated.csv")
    assert src.check()
    assert src.table is not first and src.table.ranges == 51 and src.holder("33106112345") == "FREE"
    assert (src.loads, src.refusals, src.last_error) == (2, 4, "")
    stats = src.stats()
    assert stats["ranges"] == 51 and stats["version"] == src.table.version and stats["refusals"] == 4


def test_source_at_start_is_strict(tmp_path):
    path = tmp_path / "MAJNUM.csv"
    shutil.copyfile(FIXTURES / "garbage.csv", path)
    with pytest.raises(ConfigError, match=r"MAJNUM.csv:11"):
        MajnumSource(path, background=False)
    with pytest.raises(ConfigError, match="min_ratio"):
        MajnumSource(GOOD, min_ratio=0, background=False)


def test_a_real_sized_table(tmp_path):
    """~150k ranges like Arcep's file: loads, and every boundary answers."""
    f = tmp_path / "MAJNUM.csv"
    lines = [";".join(HEADER)]
    for i in range(150_000):
        block = f"0{1 + i % 5}{i // 5:05d}"[:7]
        start = f"0{1 + i % 5}{i // 5:05d}000"[:10]
        lines.append(f"{block};{start};{start[:7]}999;OP{i % 700:03d};Métropole;01/01/2020")
    f.write_bytes("\r\n".join(lines).encode("cp1252"))
    m = Majnum.load(f)
    assert m.ranges == 150_000
    assert m.holder("33100000000") == "OP000" and m.holder("33100000999") == "OP000"
    assert m.holder("33199999999") is None
    assert m.holder("33200000500") == "OP001" and m.holder("33529999999") == "OP199"


def test_source_is_refreshed_by_the_ticker(tmp_path):
    from manverify import ticker

    path = tmp_path / "MAJNUM.csv"
    shutil.copyfile(GOOD, path)
    src = MajnumSource(path)  # background: the ticker looks at the file
    _replace(path, FIXTURES / "updated.csv")
    ticker.run_once()  # what the ticker thread does about once a second
    assert src.table.ranges == 51 and src.loads >= 2 and src.refusals == 0


def test_a_wide_m2m_range_is_one_country_code(tmp_path):
    f = tmp_path / "MAJNUM.csv"
    f.write_bytes("\n".join([";".join(HEADER), "0700;07000000000000;07009999999999;SIER;Métropole;17/07/2014"]).encode("cp1252"))
    assert Majnum.load(f).holder("337005555555555") == "SIER"
