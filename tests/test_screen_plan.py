"""manverify.screen.plan: the French plan table, by hand and against libphonenumber's metadata.

The differential test compares, on every prefix edge and on random numbers, our valid/invalid and
fixed/mobile/VoIP with phonenumbers.is_valid_number / number_type. Every disagreement must match
one row of DIFFERENCES, which says why we differ; a disagreement no row explains fails, and so does
a row no sample needs (the table stays the list of real differences, nothing more).
"""
import random
from collections import Counter

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType as T

from manverify.policy import FRENCH_COUNTRY_CODES
from manverify.screen import plan
from manverify.screen.plan import KINDS, NumberClass, classify, is_french
from manverify.tn import canonical

_THEIRS = {T.FIXED_LINE: "geographic", T.MOBILE: "mobile", T.FIXED_LINE_OR_MOBILE: "fixed-or-mobile",
           T.VOIP: "voip", T.TOLL_FREE: "special", T.PREMIUM_RATE: "special", T.SHARED_COST: "special",
           T.UAN: "special"}

_BLOCKS = ("libphonenumber lists the blocks it knows in service; the plan gives the whole range this class, "
           "and whether a block is assigned is Arcep's MAJNUM file's answer (plan.unassigned), not the plan's")
_OVER33 = ("an overseas range under +33: canonical() puts these national numbers under their own code "
           "(0590 -> +590 590), so +33 with them is no number of the plan; libphonenumber's FR metadata "
           "still accepts a few")
_LATE = ("an overseas range canonical() leaves under +33 (it has no mapping for it): accepted under +33 with its "
         "territory; libphonenumber knows it under the overseas code only")
_OVERLAP = ("libphonenumber's territories overlap here (Guyane's metadata takes all of 0976, Guadeloupe's 09395-7); "
            "the plan gives each 5-digit block to one territory")
_CANVASS = "our class: Arcep 2022-1583's canvassing ranges, which libphonenumber files as ordinary numbers"
_PLATFORM = "our class: Arcep 2022-1583's technical-platform ranges 0937-0939, ordinary VoIP for libphonenumber"

# (E.164 prefixes, our kind, libphonenumber's, why)
DIFFERENCES = (
    (("33162", "33163", "33270", "33271", "33377", "33378", "33424", "33425", "33568", "33569"),
     "canvassing", "geographic", _CANVASS),
    (("33948", "33949", "339475", "339476", "339477", "339478", "339479", "5909475", "5949476", "5969477",
      "2629478", "2629479"), "canvassing", "voip", _CANVASS),
    (("5909475", "5949476", "2629478", "2629479"), "canvassing", "invalid", _CANVASS + "; " + _BLOCKS),
    (("5969477",), "canvassing", "geographic",
     _CANVASS + "; libphonenumber files 09477 6-9 as Martinique fixed lines"),
    (("33937", "33938", "33939", "5909395", "5949396", "5969397", "2629398", "2629399"), "platform", "voip",
     _PLATFORM),
    (("5969397", "2629398", "2629399"), "platform", "invalid", _PLATFORM + "; " + _BLOCKS),
    (("33700",), "m2m", "invalid",
     "0700 + 10 digits: extended-length mobile numbers for machine-to-machine (Arcep 2012-0855, plan §2.3.5), "
     "absent from libphonenumber"),
    (("33600",), "invalid", "mobile", "06000-06009: mobile routing prefixes (plan §2.5.6), never a subscriber number"),
    (tuple(f"33{p}" for p in (*range(509, 516), *range(526, 531), *range(5230, 5235))), "invalid", "geographic",
     "0509-0515, 0526-0530, 05230-05234: mobile routing prefixes (plan §2.5.6), never a subscriber number"),
    (("33263", "33269", "33596"), "invalid", "geographic", _OVER33),
    (("33709",), "mobile", "invalid", _LATE),
    (("33400", "33401", "33402", "33403", "33404", "33405", "33406", "33407", "33408", "33409"),
     "geographic", "invalid", _BLOCKS),
    (("33836", "3384", "262", "590", "594", "596"), "special", "invalid", _BLOCKS),
    (("590806", "590807", "590808", "590809", "594806", "594807", "594808", "594809", "596806", "596807",
      "596808", "596809"), "special", "geographic",
     "0806-0809 are special numbers at normal rate (plan §2.4.4); libphonenumber's overseas metadata files them as "
     "fixed lines"),
    (("590590", "594594", "596596", "262263", "262269"), "geographic", "invalid", _BLOCKS),
    (("590691", "594694", "262639", "262693", "590709", "594709", "596709", "262709"), "mobile", "invalid", _BLOCKS),
    (("2629762", "2629763"), "voip", "invalid", _BLOCKS),
    (("5909396", "5909397", "594976"), "invalid", "voip", _OVERLAP),
    (("5969767",), "voip", "geographic", "libphonenumber files 09767 4/5/8/9 as Martinique fixed lines; 09 is the "
     "plan's numéros polyvalents (§2.3.6)"),
)


def theirs(e164: str) -> str:
    try:
        number = phonenumbers.parse("+" + e164)
    except phonenumbers.NumberParseException:
        return "invalid"
    # libphonenumber drops a trunk 0 after the country code ("+33 0612…"): a number it has to
    # rewrite is not the number we were given.
    if phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) != "+" + e164:
        return "invalid"
    if not phonenumbers.is_valid_number(number):
        return "invalid"
    kind = phonenumbers.number_type(number)
    return _THEIRS.get(kind, str(kind))


def agree(ours: str, their: str) -> bool:
    return ours == their or (their == "fixed-or-mobile" and ours in ("geographic", "mobile"))


def explain(e164: str, ours: str, their: str):
    for i, (prefixes, a, b, _why) in enumerate(DIFFERENCES):
        if a == ours and b == their and e164.startswith(prefixes):
            return i
    return None


def samples():
    """Every 3-digit national prefix under each code at the plan's length, every row of the table and its
    neighbours at lengths ±1, then random numbers (fixed seed)."""
    rnd = random.Random(20260101)

    def fill(n):
        return "".join(rnd.choice("0123456789") for _ in range(n))

    prefixes = {row[0] for row in plan._ROWS}
    for p in list(prefixes):
        for step in (-1, 1):
            q = int(p) + step
            if 0 <= q < 10 ** len(p):
                prefixes.add(str(q).zfill(len(p)))
    for cc in plan.COUNTRY_TERRITORIES:
        for i in range(1000):
            p = f"{i:03d}"
            for tail in ("000000", "999999", fill(6)):
                yield cc + p + tail
        for p in sorted(prefixes):
            lengths = (12, 13, 14) if p.startswith("70") else (8, 9, 10)
            for n in lengths:
                if n > len(p):
                    for tail in ("0" * (n - len(p)), "9" * (n - len(p)), fill(n - len(p))):
                        yield cc + p + tail
    for _ in range(20000):
        yield rnd.choice(list(plan.COUNTRY_TERRITORIES)) + fill(rnd.choice((8, 9, 9, 9, 9, 10, 13)))


def test_differential_against_libphonenumber():
    unexplained = Counter()
    examples = {}
    used = Counter()
    for e164 in samples():
        ours, their = classify(e164).kind, theirs(e164)
        if agree(ours, their):
            continue
        row = explain(e164, ours, their)
        if row is None:
            key = (e164[:6], ours, their)
            unexplained[key] += 1
            examples.setdefault(key, e164)
        else:
            used[row] += 1
    assert not unexplained, "disagreements with libphonenumber no row of DIFFERENCES explains: " + "; ".join(
        f"{examples[k]} ours={k[1]} libphonenumber={k[2]} (x{n})" for k, n in unexplained.most_common(20))
    stale = [DIFFERENCES[i][:3] for i in range(len(DIFFERENCES)) if not used[i]]
    assert not stale, f"rows of DIFFERENCES no sample needs any more: {stale}"


def test_agreement_is_the_rule():
    """The exceptions are exceptions: on ordinary numbers of each class we agree outright."""
    for e164 in ("33123456789", "33298765432", "33388776655", "33491234567", "33556789012", "33612345678",
                 "33712345678", "33912345678", "33800123456", "590590271234", "590690301234", "594594301234",
                 "596596601234", "596696201234", "262262201234", "262692501234", "262269601234"):
        assert agree(classify(e164).kind, theirs(e164)), e164


@pytest.mark.parametrize("national, kind, territory, tz", [
    ("0123456789", "geographic", "metropole", "Europe/Paris"),
    ("0556789012", "geographic", "metropole", "Europe/Paris"),
    ("0162000001", "canvassing", "metropole", "Europe/Paris"),
    ("0569999999", "canvassing", "metropole", "Europe/Paris"),
    ("0948123456", "canvassing", "metropole", "Europe/Paris"),
    ("0947512345", "canvassing", "guadeloupe", "America/Guadeloupe"),
    ("0947612345", "canvassing", "guyane", "America/Cayenne"),
    ("0947712345", "canvassing", "martinique", "America/Martinique"),
    ("0947812345", "canvassing", "mayotte", "Indian/Mayotte"),
    ("0947912345", "canvassing", "reunion", "Indian/Reunion"),
    ("0947412345", "voip", "metropole", "Europe/Paris"),
    ("0937000000", "platform", "metropole", "Europe/Paris"),
    ("0939412345", "platform", "metropole", "Europe/Paris"),
    ("0936999999", "voip", "metropole", "Europe/Paris"),
    ("0940000000", "voip", "metropole", "Europe/Paris"),
    ("0612345678", "mobile", "metropole", "Europe/Paris"),
    ("0600123456", "invalid", "metropole", "Europe/Paris"),
    ("0712345678", "invalid", "metropole", "Europe/Paris"),
    ("0790123456", "mobile", "metropole", "Europe/Paris"),
    ("0800123456", "special", "metropole", "Europe/Paris"),
    ("0899123456", "special", "metropole", "Europe/Paris"),
    ("0870123456", "invalid", "metropole", "Europe/Paris"),
    ("0590123456", "geographic", "guadeloupe", "America/Guadeloupe"),
    ("0690123456", "mobile", "guadeloupe", "America/Guadeloupe"),
    ("0691123456", "mobile", "guadeloupe", "America/Guadeloupe"),
    ("0594123456", "geographic", "guyane", "America/Cayenne"),
    ("0694123456", "mobile", "guyane", "America/Cayenne"),
    ("0596123456", "geographic", "martinique", "America/Martinique"),
    ("0696123456", "mobile", "martinique", "America/Martinique"),
    ("0697123456", "mobile", "martinique", "America/Martinique"),
    ("0262123456", "geographic", "reunion", "Indian/Reunion"),
    ("0263123456", "geographic", "reunion", "Indian/Reunion"),
    ("0692123456", "mobile", "reunion", "Indian/Reunion"),
    ("0693123456", "mobile", "reunion", "Indian/Reunion"),
    ("0269123456", "geographic", "mayotte", "Indian/Mayotte"),
    ("0639123456", "mobile", "mayotte", "Indian/Mayotte"),
    ("0709012345", "mobile", "guadeloupe", "America/Guadeloupe"),
    ("0709301234", "mobile", "guyane", "America/Cayenne"),
    ("0709351234", "mobile", "mayotte", "Indian/Mayotte"),
    ("0976912345", "voip", "mayotte", "Indian/Mayotte"),
])
def test_national_numbers_after_canonical(national, kind, territory, tz):
    c = classify(canonical(national))
    assert (c.kind, c.territory, c.tz) == (kind, territory, tz)
    assert c.source


def test_overseas_ranges_under_33_are_invalid():
    for e164 in ("33590123456", "33690123456", "33262123456", "33692123456", "33639123456", "33269123456"):
        c = classify(e164)
        assert c.kind == "invalid" and "never +33" in c.source, e164


def test_overseas_numbers_outside_their_code_are_invalid():
    assert classify("590594123456").kind == "invalid"  # Guyane's fixed range under Guadeloupe's code
    assert classify("262590123456").kind == "invalid"
    assert classify("594612345678").kind == "invalid"  # a metropolitan mobile range under +594
    assert classify("590800123456").kind == "special"  # 08 numbers are national


def test_m2m_has_fourteen_national_digits():
    assert classify("33700123456789" + "0").kind == "m2m"
    assert classify("33700123456789").kind == "invalid"
    assert classify("337001234567").kind == "invalid"


@pytest.mark.parametrize("e164", ["3361234567", "336123456789", "5905901234567", "59059012345"])
def test_wrong_length_is_invalid_with_the_class_it_would_have(e164):
    c = classify(e164)
    assert c.kind == "invalid" and c.territory is not None and "digits" in c.source


@pytest.mark.parametrize("number, kind", [
    ("15", "short"), ("17", "short"), ("18", "short"), ("112", "short"), ("119", "short"), ("3949", "short"),
    ("3000", "short"), ("1013", "short"), ("118712", "short"), ("116000", "short"),
    ("12", "invalid"), ("113", "invalid"), ("1234", "invalid"), ("117123", "invalid"), ("12345", "invalid"),
    ("7", "invalid"), ("336123", "invalid"),
])
def test_short_numbers(number, kind):
    c = classify(number)
    assert c.kind == kind and c.tz is None


def test_trunk_zero_after_the_code_is_invalid():
    assert classify("330612345678").kind == "invalid"
    assert "trunk" in classify("330612345678").source
    assert classify("2620692123456").kind == "invalid"


@pytest.mark.parametrize("e164", ["441632960123", "12025550123", "4915112345678", "508411234", "2693212345"])
def test_foreign(e164):
    assert classify(e164) == NumberClass("foreign", None, None, plan._FOREIGN.source)
    assert not is_french(e164)


@pytest.mark.parametrize("garbage", ["", "+33612345678", "33 612345678", "abc", "٣٣٦١٢٣٤٥٦٧٨", "０６１２３４５６７８",
                                     "0612345678", "33612345678\n", None, 33612345678, b"33612345678", "²"])
def test_garbage_never_raises(garbage):
    c = classify(garbage)
    assert c.kind == "invalid" and c.tz is None
    assert not is_french(garbage)


def test_any_string_gives_a_class():
    rnd = random.Random(7)
    alphabet = "0123456789+ -()#*x٣é\x00"
    for _ in range(5000):
        s = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 20)))
        assert classify(s).kind in KINDS


def test_is_french():
    assert is_french("33612345678") and is_french("590590123456") and is_french("262639123456")
    assert is_french("33590123456")  # invalid, but a +33 number: plan.invalid is about it
    assert is_french("3949") and not is_french("12")
    assert set(FRENCH_COUNTRY_CODES) == set(plan.COUNTRY_TERRITORIES)


def test_every_class_names_a_source_and_a_known_zone():
    import zoneinfo

    seen = set()
    for leaf in plan._INDEX.values():
        for length, good, bad in (leaf.values() if isinstance(leaf, dict) else (leaf,)):
            for c in (good, bad):
                assert c.kind in KINDS and c.source
                seen.add(c.kind)
                zoneinfo.ZoneInfo(c.tz)
    assert seen >= {"geographic", "mobile", "m2m", "voip", "canvassing", "platform", "special", "invalid"}
