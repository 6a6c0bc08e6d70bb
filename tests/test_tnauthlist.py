import pytest
from hypothesis import given, strategies as st

from manverify.certs import tnauthlist
from manverify.certs.tnauthlist import TNAuthListError, decode, encode


def test_rfc8226_spc_vector():
    assert encode(spc="1001") == bytes.fromhex("3008a006160431303031")
    assert decode(bytes.fromhex("3008a006160431303031")).spcs == ("1001",)


def test_ranges_and_ones_round_trip():
    der = encode(spc="FR01", ranges=[("33612345600", 100), ("33100000000", 200000)], ones=["33198765432"])
    t = decode(der)
    assert t.spcs == ("FR01",) and t.ranges == (("33612345600", 100), ("33100000000", 200000))
    assert t.ones == ("33198765432",)
    assert t.covers("33612345699") and not t.covers("33612345700") and t.covers("33198765432")


@pytest.mark.parametrize(
    "hexder, fragment",
    [
        ("", "truncated"),
        ("3000", "empty"),
        ("3108a006160431303031", "SEQUENCE"),
        ("3008a006160431303031ff", "SEQUENCE"),  # trailing byte after the list
        ("3009a006160431303031", "past"),  # length says 9
        ("3008a306160431303031", "unknown TNEntry"),
        ("3008a006130431303031", "IA5String"),  # PrintableString, not IA5
        ("3006a0041602ff00", "printable"),
        ("3080a006160431303031", "indefinite"),
        ("308108a006160431303031", "minimal"),
        ("300aa2081606" + "3361626364", "past"),
        ("300aa1083006160131020101", "at least 2"),  # count 1
        ("300ca10a30081601310203007fff", "minimal"),
        ("3014a2121610" + "31" * 16, "1-15"),
    ],
)
def test_malformed(hexder, fragment):
    with pytest.raises(TNAuthListError, match=fragment):
        decode(bytes.fromhex(hexder))


@given(st.binary(max_size=120))
def test_decoder_raises_only_its_error(der):
    try:
        decode(der)
    except TNAuthListError:
        pass


@given(
    spc=st.one_of(st.none(), st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=8)),
    ones=st.lists(st.text(alphabet="0123456789", min_size=1, max_size=15), max_size=3),
    ranges=st.lists(st.tuples(st.text(alphabet="0123456789", min_size=1, max_size=15),
                              st.integers(min_value=2, max_value=2**40)), max_size=3),
)
def test_round_trip(spc, ones, ranges):
    if spc is None and not ones and not ranges:
        return
    t = decode(encode(spc=spc, ranges=ranges, ones=ones))
    assert t.spcs == ((spc,) if spc else ()) and t.ones == tuple(ones) and t.ranges == tuple(ranges)


@given(st.binary(min_size=1, max_size=60), st.integers(min_value=0, max_value=59))
def test_bit_flips_never_crash(der, i):
    base = bytearray(encode(spc="1001", ranges=[("3361234", 50)], ones=["331"]))
    base[i % len(base)] ^= der[0] or 1
    try:
        decode(bytes(base))
    except TNAuthListError:
        pass


def test_oid():
    assert tnauthlist.OID == "1.3.6.1.5.5.7.1.26"
