"""The French numbering plan as a compact table: what kind of number a canonical number is, where.

    classify("33162001234") -> NumberClass(kind="canvassing", territory="metropole",
                                           tz="Europe/Paris", source="Arcep 2022-1583: ...")

Numbers arrive as manverify.tn.canonical() makes them: E.164 digits without '+', overseas
departments under their own country codes (0590… -> 590590…, 0692… -> 262692…). The table is
written in national form (the digits after the trunk 0) with the territory each range belongs
to; at import it is expanded into one dict keyed by country code + 4 national digits, so a
lookup is a slice and one or two dict hits.

Which country code a range lives under is decided by canonical() itself: a range whose national
prefix canonical() sends to an overseas code (0590, 0694, 0262, 0639…) is invalid under +33
(a number shown as +33 590… is no number of the plan); overseas ranges canonical() leaves under
+33 (0709 0, 0939 5, 0947 5, 0976, 0598 7…, opened after its table was written) are accepted
under +33 and under their own code, with their territory.

What the table does not say: whether a block is assigned to an operator (that is Arcep's MAJNUM
file, majnum.py, rule plan.unassigned) — a range of the right class and length is "valid" here.
Saint-Pierre-et-Miquelon (+508) is left out: canonical() has no mapping for it, so its numbers
are foreign here.
"""
from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple, Union

from ..tn import canonical

KINDS = ("geographic", "mobile", "m2m", "voip", "canvassing", "platform", "special", "short", "invalid", "foreign")


class NumberClass(NamedTuple):
    kind: str  # one of KINDS
    territory: Optional[str]  # "metropole", "guadeloupe", "guyane", "martinique", "reunion", "mayotte"
    tz: Optional[str]  # IANA zone of the territory, None when the number has none (foreign, short)
    source: str  # the decision that gives the range its class, or why the number is invalid


TZ = {
    "metropole": "Europe/Paris",
    "guadeloupe": "America/Guadeloupe",  # Saint-Martin and Saint-Barthélemy share it (UTC-4)
    "martinique": "America/Martinique",
    "guyane": "America/Cayenne",
    "reunion": "Indian/Reunion",
    "mayotte": "Indian/Mayotte",
}
# Country codes of the French plan (as in manverify.policy.FRENCH_COUNTRY_CODES) and the
# territories each carries; the first is the one a number gets when its range says nothing finer.
COUNTRY_TERRITORIES = {
    "33": ("metropole",),
    "590": ("guadeloupe",),
    "594": ("guyane",),
    "596": ("martinique",),
    "262": ("reunion", "mayotte"),
}

PLAN = "Arcep 2018-0881 as amended by 2022-1583 (plan national de numérotation)"
_GEO = PLAN + " §2.3.3: geographic number, zone 0{} ({})"
_REGIONS = {"1": "Île-de-France", "2": "Nord-Ouest", "3": "Nord-Est", "4": "Sud-Est", "5": "Sud-Ouest"}
_MOBILE = PLAN + " §2.3.4: mobile number, person-to-person use only from 1 Jan 2023"
_M2M = PLAN + " §2.3.5: extended-length mobile number 0700 + 10 digits (opened by Arcep 2012-0855)"
_VOIP = PLAN + " §2.3.6: numéro polyvalent (09)"
_CANVASS = ("Arcep 2022-1583: range dedicated to automated calling and canvassing from 1 Jan 2023 "
            "(0162 0163 0270 0271 0377 0378 0424 0425 0568 0569 0948 0949; overseas 09475-09479)")
_PLATFORM = PLAN + " §2.3.9 (Arcep 2022-1583): number for exchanges with a technical platform (0937-0939)"
_SPECIAL = PLAN + " §2.4: special number (0800-0805 free, 0806-0809 normal rate, 081-089 value-added)"
_ROUTING = PLAN + " §2.5.6: mobile number-portability routing prefix, never a number shown to anyone"
_OVERSEAS_LATE = " (range opened overseas after 2022; the territory split follows libphonenumber's metadata)"

# (national prefix after the trunk 0, kind, territory, source[, national significant length]).
# A longer prefix overrides a shorter one. Prefixes not covered are invalid (not opened).
_ROWS: Tuple[tuple, ...] = (
    *((z, "geographic", "metropole", _GEO.format(z, r)) for z, r in _REGIONS.items()),
    *((p, "canvassing", "metropole", _CANVASS) for p in ("162", "163", "270", "271", "377", "378", "424", "425", "568", "569")),
    ("262", "geographic", "reunion", _GEO.format(2, "La Réunion")),
    ("263", "geographic", "reunion", _GEO.format(2, "La Réunion")),
    ("2688", "geographic", "reunion", _GEO.format(2, "La Réunion") + _OVERSEAS_LATE),
    ("2689", "geographic", "mayotte", _GEO.format(2, "Mayotte") + _OVERSEAS_LATE),
    ("269", "geographic", "mayotte", _GEO.format(2, "Mayotte (Arcep 2006-0720)")),
    ("590", "geographic", "guadeloupe", _GEO.format(5, "Guadeloupe, Saint-Martin, Saint-Barthélemy")),
    ("594", "geographic", "guyane", _GEO.format(5, "Guyane")),
    ("596", "geographic", "martinique", _GEO.format(5, "Martinique")),
    ("5987", "geographic", "guadeloupe", _GEO.format(5, "Guadeloupe") + _OVERSEAS_LATE),
    ("5988", "geographic", "guyane", _GEO.format(5, "Guyane") + _OVERSEAS_LATE),
    ("5989", "geographic", "martinique", _GEO.format(5, "Martinique") + _OVERSEAS_LATE),
    *((str(p), "invalid", "metropole", _ROUTING) for p in (*range(509, 516), *range(526, 531), *range(5230, 5235))),
    ("6", "mobile", "metropole", _MOBILE),
    ("600", "invalid", "metropole", _ROUTING),
    ("639", "mobile", "mayotte", _MOBILE),
    ("690", "mobile", "guadeloupe", _MOBILE),
    ("691", "mobile", "guadeloupe", _MOBILE),
    ("692", "mobile", "reunion", _MOBILE),
    ("693", "mobile", "reunion", _MOBILE),
    ("694", "mobile", "guyane", _MOBILE),
    ("696", "mobile", "martinique", _MOBILE),
    ("697", "mobile", "martinique", _MOBILE),
    ("700", "m2m", "metropole", _M2M, 13),
    *((p, "mobile", "metropole", _MOBILE) for p in ("73", "74", "75", "76", "77", "78", "79")),
    ("7090", "mobile", "guadeloupe", _MOBILE + _OVERSEAS_LATE),
    ("7091", "mobile", "martinique", _MOBILE + _OVERSEAS_LATE),
    ("7092", "mobile", "reunion", _MOBILE + _OVERSEAS_LATE),
    *((f"7093{p}", "mobile", "guyane", _MOBILE + _OVERSEAS_LATE) for p in "01234"),
    *((f"7093{p}", "mobile", "mayotte", _MOBILE + _OVERSEAS_LATE) for p in "56789"),
    ("8", "special", "metropole", _SPECIAL),
    ("87", "invalid", "metropole", PLAN + ": 087 is no category of the plan (the former non-geographic "
     "numbers of Arcep 2005-1085 moved to 09)"),
    ("9", "voip", "metropole", _VOIP),
    ("937", "platform", "metropole", _PLATFORM),
    ("938", "platform", "metropole", _PLATFORM),
    ("939", "platform", "metropole", _PLATFORM),
    ("9395", "platform", "guadeloupe", _PLATFORM + _OVERSEAS_LATE),
    ("9396", "platform", "guyane", _PLATFORM + _OVERSEAS_LATE),
    ("9397", "platform", "martinique", _PLATFORM + _OVERSEAS_LATE),
    ("9398", "platform", "mayotte", _PLATFORM + _OVERSEAS_LATE),
    ("9399", "platform", "reunion", _PLATFORM + _OVERSEAS_LATE),
    ("948", "canvassing", "metropole", _CANVASS),
    ("949", "canvassing", "metropole", _CANVASS),
    ("9475", "canvassing", "guadeloupe", _CANVASS),
    ("9476", "canvassing", "guyane", _CANVASS),
    ("9477", "canvassing", "martinique", _CANVASS),
    ("9478", "canvassing", "mayotte", _CANVASS),
    ("9479", "canvassing", "reunion", _CANVASS),
    *((f"976{p}", "voip", t, _VOIP + " overseas" + _OVERSEAS_LATE) for p, t in (
        ("0", "guadeloupe"), ("1", "guadeloupe"), ("8", "guadeloupe"), ("2", "reunion"), ("3", "reunion"),
        ("4", "guyane"), ("5", "guyane"), ("6", "martinique"), ("7", "martinique"), ("9", "mayotte"))),
)

# Short numbers (dialled as is, no country code): their shapes by length.
_SHORT_SOURCE = PLAN + " §2.4.8-2.4.11: short number ({})"
_SHORT = {
    2: (("15", "17", "18"), "emergency"),
    3: (("112", "114", "115", "119", "191", "196", "197"), "emergency or social service"),
}
_SHORT_PREFIXED = {  # length -> prefixes
    4: (("10", "operator service 10YT"), ("3", "3BPQ")),
    6: (("116", "harmonised European service 116XYZ"), ("118", "directory enquiries 118XYZ")),
}

_NOT_DIGITS = NumberClass("invalid", None, None, "not E.164 digits")
_FOREIGN = NumberClass("foreign", None, None, "not a country code of the French plan (33, 262, 590, 594, 596)")
_NOT_SHORT = NumberClass("invalid", None, None, "too short for E.164 and not a short number of the plan")

_Leaf = Tuple[int, NumberClass, NumberClass]  # (total length, class at that length, class otherwise)
_Node = Union[_Leaf, Dict[str, _Leaf]]
_KEY = 4  # national digits in the index key
_INDEX: Dict[str, _Node] = {}
_UNKNOWN: Dict[str, NumberClass] = {}  # country code -> class for an unopened prefix
_TRUNK: Dict[str, NumberClass] = {}  # country code -> class when the trunk 0 was kept


def _canonical_code(prefix: str) -> str:
    """The country code canonical() gives the national numbers of this prefix."""
    number = canonical("0" + prefix + "0" * (9 - len(prefix)))
    return next(cc for cc in COUNTRY_TERRITORIES if number.startswith(cc))


def _build() -> None:
    rows = sorted(_ROWS, key=lambda r: len(r[0]))
    for cc, territories in COUNTRY_TERRITORIES.items():
        home = territories[0]
        _UNKNOWN[cc] = NumberClass("invalid", home, TZ[home], f"+{cc}: prefix not opened in " + PLAN)
        _TRUNK[cc] = NumberClass("invalid", home, TZ[home], f"+{cc} followed by the trunk 0")
        table: Dict[str, _Leaf] = {}  # national prefix (any length) -> leaf
        for prefix, kind, territory, source, *length in rows:
            nsn = length[0] if length else 9
            owner = _canonical_code(prefix)
            if cc == "33":
                if owner != "33":  # canonical() never puts these under +33
                    kind, territory = "invalid", home
                    source = f"{source}; under +{owner} only, never +33"
            elif territory not in territories:
                if prefix[0] != "8":
                    continue
                territory = home  # 08 numbers are national: each code reaches them
            good = NumberClass(kind, territory, TZ[territory], source)
            bad = good if kind == "invalid" else NumberClass(
                "invalid", territory, TZ[territory], f"not {len(cc) + nsn} digits: {source}")
            table[prefix] = (len(cc) + nsn, good, bad)
        _index(cc, table)


def _index(cc: str, table: Dict[str, _Leaf]) -> None:
    """Expand prefixes shorter than _KEY to every key below them (longest prefix wins); prefixes
    longer than _KEY become a dict under their key."""
    for prefix in sorted(table, key=len):
        leaf = table[prefix]
        if len(prefix) <= _KEY:
            width = _KEY - len(prefix)
            for i in range(10 ** width):
                tail = str(i).zfill(width) if width else ""
                _INDEX[cc + prefix + tail] = leaf
        else:
            key = cc + prefix[:_KEY]
            node = _INDEX.get(key)
            if not isinstance(node, dict):
                node = {"": node} if node is not None else {}
                _INDEX[key] = node
            node[cc + prefix] = leaf
    assert all(len(p) <= _KEY + 1 for p in table), "the index looks one digit deeper than _KEY at most"


_build()
_KEY33 = 2 + _KEY
_KEY3 = 3 + _KEY
_CC3 = frozenset(cc for cc in COUNTRY_TERRITORIES if len(cc) == 3)


def classify(e164: str) -> NumberClass:
    """The class of a canonical number (E.164 digits without '+', or a short number). Never raises."""
    if type(e164) is not str:
        if not isinstance(e164, str):
            return _NOT_DIGITS
        e164 = str(e164)
    if not e164.isdigit() or not e164.isascii():
        return _NOT_DIGITS
    if len(e164) <= 6:  # national short numbers; no E.164 number is that short
        return _SHORTS.get(e164, _NOT_SHORT)
    # +33 keys are 6 characters, the 3-digit codes' keys 7: no key of one is a prefix of another.
    node = _INDEX.get(e164[:_KEY33]) or _INDEX.get(e164[:_KEY3])
    if node is None:
        return _other(e164)
    if type(node) is dict:  # one digit deeper, keys 7 or 8 characters likewise
        node = node.get(e164[:_KEY33 + 1]) or node.get(e164[:_KEY3 + 1]) or node.get("")
        if node is None:
            return _other(e164)
    length, good, bad = node
    return good if len(e164) == length else bad


def _other(e164: str) -> NumberClass:
    """A number the index has no key for: short, foreign, or an unopened French prefix."""
    cc = "33" if e164[:2] == "33" else e164[:3] if e164[:3] in _CC3 else None
    if cc is None:
        return _NOT_DIGITS if e164[0] == "0" else _FOREIGN
    return _TRUNK[cc] if e164[len(cc)] == "0" else _UNKNOWN[cc]


def _shorts() -> Dict[str, NumberClass]:
    """Every short number of the plan's shapes, spelt out (about 3,000): one dict hit per look-up."""
    out: Dict[str, NumberClass] = {}
    for numbers, what in _SHORT.values():
        for number in numbers:
            out[number] = NumberClass("short", None, None, _SHORT_SOURCE.format(what))
    for n, shapes in _SHORT_PREFIXED.items():
        for prefix, what in shapes:
            c = NumberClass("short", None, None, _SHORT_SOURCE.format(what))
            width = n - len(prefix)
            for i in range(10 ** width):
                out[prefix + str(i).zfill(width)] = c
    return out


_SHORTS = _shorts()


def is_french(e164: str) -> bool:
    """Whether a canonical number is one of the French plan's: under one of its country codes
    (valid or not: that is what plan.invalid is about) or one of its short numbers."""
    if not isinstance(e164, str) or not e164.isdigit() or not e164.isascii():
        return False
    if len(e164) <= 6:
        return e164 in _SHORTS
    return e164[:2] == "33" or e164[:3] in _CC3
