import pytest
from hypothesis import example, given, settings, strategies as st

from manverify import tn
from manverify.errors import Error, InvalidNumber


@pytest.mark.parametrize(
    "given_form, canonical",
    [
        ("0612345678", "33612345678"),
        ("06 12 34 56 78", "33612345678"),
        ("06.12.34.56.78", "33612345678"),
        ("+33 6 12 34 56 78", "33612345678"),
        ("+33612345678", "33612345678"),
        ("0033612345678", "33612345678"),
        ("33612345678", "33612345678"),
        ("tel:+33-6-12-34-56-78", "33612345678"),
        ("tel:0612345678;phone-context=+33", "33612345678"),
        ("sip:+33612345678@ims.example.fr;user=phone", "33612345678"),
        ("<sip:+33612345678@192.0.2.1;user=phone>", "33612345678"),
        ('"Alice" <sip:+33612345678@h;user=phone>;tag=1', "33612345678"),
        ("sips:0612345678@h", "33612345678"),
        ("0198765432", "33198765432"),
        ("0590123456", "590590123456"),  # Guadeloupe fixed
        ("0690123456", "590690123456"),  # Guadeloupe mobile
        ("0594123456", "594594123456"),  # Guyane
        ("0596123456", "596596123456"),  # Martinique
        ("0262123456", "262262123456"),  # La Réunion fixed
        ("0692123456", "262692123456"),  # La Réunion mobile
        ("0693123456", "262693123456"),
        ("0269123456", "262269123456"),  # Mayotte
        ("0639123456", "262639123456"),
        ("+1 (202) 555-0100", "12025550100"),
        ("+44 20 7946 0018", "442079460018"),
        ("*31#0612345678", "*31#0612345678"),
    ],
)
def test_canonical_forms(given_form, canonical):
    assert tn.canonical(given_form) == canonical


@pytest.mark.parametrize(
    "bad", ["", "anonymous", "sip:anonymous@anonymous.invalid", "+", "06123a5678", "1" * 16,
            "tel:", "+33 6 12 34 56 78 99 99 99", "x" * 1000, "٠٦١٢٣٤٥٦٧٨"],
)
def test_not_numbers(bad):
    with pytest.raises(InvalidNumber):
        tn.canonical(bad)
    assert tn.try_canonical(bad) is None


def test_invalid_number_is_a_manverify_error():
    assert issubclass(InvalidNumber, Error) and issubclass(InvalidNumber, ValueError)
    with pytest.raises(InvalidNumber):
        tn.canonical(612345678)  # type: ignore[arg-type]


def test_portability_routing_prefix_matches_the_number():
    # +33 + 5-digit routing prefix + 9-digit number: 16 digits, beyond E.164's 15.
    routed = tn.canonical("+33 Z".replace(" Z", "") + "12345" + "612345678", max_digits=20)
    assert len(routed) == 16
    assert tn.same_destination(routed, "33612345678")
    assert not tn.same_destination(routed, "33612345679")
    assert tn.same_destination("33612345678", "33612345678")


# Numbers as they are written: a scheme, an international mark, digits with separators, a
# phone-context (global or a domain), a host; and free text over the same characters.
_written = st.tuples(
    st.sampled_from(["", "tel:", "sip:", "<sip:", '"A" <tel:', "sips:"]),
    st.sampled_from(["", "+", "00", "+0", "+00", "000", "0", "*", "#"]),
    st.text(alphabet="0123456789 -.()", max_size=22),
    st.sampled_from(["", ";phone-context=+33", ";phone-context=+0", ";phone-context=+44",
                     ";phone-context=+1-914-555", ";phone-context=ims.example.fr", ";user=phone"]),
    st.sampled_from(["", "@h", "@h;user=phone", "@h>", ">"]),
).map("".join)
numbers = st.one_of(_written, st.text(alphabet="0123456789 +-.()#*:;=<>@telsip", max_size=30))


@settings(max_examples=1500)
@given(numbers, st.sampled_from([15, 20]))
@example("+0612345678", 15)
@example("tel:+0033612345678", 15)
@example("+0590123456", 15)
@example("tel:0612345678;phone-context=ims.example.fr", 15)
def test_canonicalisation_is_idempotent(text, max_digits):
    first = tn.try_canonical(text, max_digits=max_digits)
    if first is not None:
        assert tn.canonical(first, max_digits=max_digits) == first
        assert len(first) <= max_digits


@pytest.mark.parametrize("written", [
    "+0612345678", "tel:+0033612345678", "+0590123456", "<sip:+0612345678@h>", "000612345678",
    "tel:612;phone-context=+0", "+#31#0612345678",
])
def test_after_an_international_mark_come_e164_digits(written):
    """A '+' (or the 00 prefix) says the digits are already international: a country code never
    starts with 0, so "+0612345678" is not the French national 0612345678 (RFC 8224 §8.3)."""
    assert tn.try_canonical(written) is None


def test_a_national_number_is_national_in_a_domain_context():
    # IMS writes dialled numbers with the home network's domain as phone-context (RFC 3966 §5.1.5).
    assert tn.canonical("tel:0612345678;phone-context=ims.example.fr") == "33612345678"
    assert tn.canonical("sip:0612345678;phone-context=ims.example.fr@ims.example.fr;user=phone") == "33612345678"
    assert tn.canonical("tel:3615;phone-context=ims.example.fr") == "3615"


@given(st.text(max_size=300))
def test_never_raises_anything_but_invalid_number(text):
    try:
        out = tn.canonical(text)
    except InvalidNumber:
        return
    assert out and len(out) <= 15


def _general(value, max_digits):
    """canonical() without its fast paths."""
    if len(value) > 256:
        return None
    try:
        return tn._read_general(value, max_digits, "33")
    except InvalidNumber:
        return None


_uri_parts = st.tuples(
    st.sampled_from(["", " ", "\t", '"Alice" ', "Alice ", "\n"]),
    st.sampled_from(["<", ""]),
    st.sampled_from(["sip:", "SIP:", "sips:", "tel:", "sip: ", "sipx:"]),
    st.sampled_from(["+", "", "++", "00"]),
    st.text(alphabet="0123456789", min_size=0, max_size=22),
    st.sampled_from(["@", "", ";user=phone@", "-1@", " @"]),
    st.sampled_from(["ims.example.fr", "127.0.0.1;user=phone", "h<x>", 'h"q"', "h>", ""]),
    st.sampled_from([">", "", ">;tag=1", "> <sip:+1@h>", ">>"]),
    st.sampled_from([15, 20]),
)


@settings(max_examples=800)
@given(_uri_parts)
def test_sip_uri_fast_path_reads_as_the_general_parser(parts):
    """canonical()'s shortcut for "<sip:+digits@host>" and "sip:+digits@host" gives what its
    general parser gives, on those shapes and on every near miss."""
    *pieces, max_digits = parts
    value = "".join(pieces)
    assert tn.try_canonical(value, max_digits=max_digits) == _general(value, max_digits)


def test_sip_uri_fast_path_covers_what_proxies_send():
    for value in ("<sip:+33612345678@ims.example.fr;user=phone>", "<sip:+33612345678@h>;tag=abc",
                  "sip:+33198765432@127.0.0.1:5080", "<sips:+33612345678@h>"):
        assert tn._SIP_GLOBAL.match(value), value
        assert tn.try_canonical(value) == _general(value, 15)
    assert tn.try_canonical("<sip:+" + "1" * 16 + "@h>") is None  # over 15 digits
    assert tn.try_canonical("<sip:+" + "1" * 16 + "@h>", max_digits=20) == "1" * 16
    assert tn.try_canonical("<sip:+33612345678@" + "h" * 300 + ">") is None  # over 256 characters
