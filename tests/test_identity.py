import pytest
from hypothesis import given, strategies as st

from manverify import identity

TOKEN = "eyJh.eyJi.c2ln"
URL = "https://certs.example.fr/op.pem"


@pytest.mark.parametrize(
    "value",
    [
        f"{TOKEN};info=<{URL}>;alg=ES256;ppt=shaken",
        f"{TOKEN};ppt=shaken;alg=ES256;info=<{URL}>",
        f"{TOKEN} ; info = <{URL}> ; alg = ES256 ; ppt = shaken",
        f"{TOKEN};INFO=<{URL}>;ALG=ES256;PPT=shaken",
        f'{TOKEN};info=<{URL}>;alg=ES256;ppt="shaken"',
        f"Identity: {TOKEN};info=<{URL}>;alg=ES256;ppt=shaken",
        f"identity:{TOKEN};info=<{URL}>;alg=ES256;ppt=shaken",
        f"y: {TOKEN};info=<{URL}>;alg=ES256;ppt=shaken",
        f"{TOKEN};info=<{URL}>\r\n ;alg=ES256;\r\n\tppt=shaken",
    ],
)
def test_forms_seen_in_the_wild(value):
    h = identity.parse(value)
    assert (h.token, h.info, h.alg, h.ppt) == (TOKEN, URL, "ES256", "shaken")
    assert dict(h.params)["info"] == URL


def test_extra_and_generic_params_are_kept_for_policy():
    h = identity.parse(f"{TOKEN};info=<{URL}>;alg=ES256;ppt=shaken;foo=bar;flag")
    assert h.params[-2:] == (("foo", "bar"), ("flag", ""))


def test_compact_form():
    h = identity.parse(f"..c2ln;info=<{URL}>;alg=ES256")
    assert h.compact and h.ppt is None


@pytest.mark.parametrize(
    "value, message",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("abc;info=<x>", "1 parts"),
        ("a.b.c.d;info=<x>", "4 parts"),
        (f"{TOKEN};info={URL}", "angle brackets"),
        (f"{TOKEN};info=<{URL}", "unterminated"),
        (f"{TOKEN};info=<{URL}>;alg=ES256;alg=ES256", "twice"),
        (f"{TOKEN};info=<{URL}>;ppt=\"shaken", "unterminated"),
        (f"{TOKEN} junk;info=<{URL}>", "expected ';'"),
        (f"{TOKEN};=x", "parameter name"),
        (f"{TOKEN};info=<>", "not a URI"),
        ("ü.b.c;info=<x>", "base64url token"),
    ],
)
def test_syntax_errors_say_what_is_wrong(value, message):
    with pytest.raises(identity.HeaderSyntaxError, match=message):
        identity.parse(value)


def test_header_values_from_raw_lines():
    raw = (
        "INVITE sip:+33198765432@h SIP/2.0\r\n"
        f"Identity: {TOKEN};info=<{URL}>;alg=ES256;ppt=shaken\r\n"
        "From: <sip:+33612345678@h>;tag=1\r\n"
        f"y: a.b.c;info=<{URL}>\r\n  ;alg=ES256;ppt=div\r\n"
        f"identity: d.e.f;info=<{URL}>;alg=ES256;ppt=shaken\r\n"
    )
    values = identity.header_values(raw)
    assert values[0] == f"{TOKEN};info=<{URL}>;alg=ES256;ppt=shaken"
    assert values[1] == f"a.b.c;info=<{URL}> ;alg=ES256;ppt=div"
    assert values[2].startswith("d.e.f")
    assert identity.header_values(raw.split("\r\n")) == values


@given(st.text(max_size=400))
def test_parser_raises_only_its_syntax_error(text):
    try:
        identity.parse(text)
    except identity.HeaderSyntaxError:
        pass


def test_parameters_are_bounded():
    """RFC 8224 defines three parameters; 8 KiB holds thousands. Past MAX_PARAMS the header is
    refused without reading the rest, and a duplicate is found however far apart the two are."""
    names = [f"p{i}" for i in range(identity.MAX_PARAMS - 3)]
    value = f"{TOKEN};info=<{URL}>;alg=ES256;ppt=shaken;" + ";".join(names)
    assert len(identity.parse(value).params) == identity.MAX_PARAMS
    with pytest.raises(identity.HeaderSyntaxError, match=f"more than {identity.MAX_PARAMS} parameters"):
        identity.parse(value + ";one-more")
    with pytest.raises(identity.HeaderSyntaxError, match="'info' appears twice"):
        identity.parse(f"{TOKEN};info=<{URL}>;" + ";".join(names) + f";info=<{URL}>")


@pytest.mark.parametrize("quoted, text", [
    (r'"shaken"', "shaken"), (r'"a\"b"', 'a"b'), (r'"a\\b"', "a\\b"), (r'"a\\\"b"', 'a\\"b'),
    (r'"\\\\"', "\\\\"), (r'"\a\b"', "ab"), ('"\ue000\\x"', "\ue000x"),
])
def test_quoted_values_are_unescaped(quoted, text):
    assert dict(identity.parse(f"{TOKEN};info=<{URL}>;x={quoted}").params)["x"] == text


@given(st.text(alphabet='\\"ab \ue000', max_size=30))
def test_unescaping_reads_each_quoted_pair_once(body):
    """The str-method unescaping says what a left-to-right reading of quoted-pairs says."""
    m = identity._QUOTED.match(f'"{body}"')
    if m and m.end() == len(body) + 2:
        expected, i = [], 0
        while i < len(body):
            if body[i] == "\\":
                i += 1
            expected.append(body[i])
            i += 1
        assert identity._unescape(m.group(1)) == "".join(expected)


@pytest.mark.parametrize("value, message", [
    (f"{TOKEN};info=<{URL}\x1b[2J>;alg=ES256;ppt=shaken", "not a URI"),
    (f"{TOKEN};info=<{URL}\x00>;alg=ES256;ppt=shaken", "not a URI"),
    (f"{TOKEN};info=<{URL}\x7f>;alg=ES256;ppt=shaken", "not a URI"),
    (f"{TOKEN};info=<{URL}\x9b>;alg=ES256;ppt=shaken", "not a URI"),  # CSI: not ASCII, not a URI
    (f'{TOKEN};info="<{URL}\x1b]0;x\x07>";alg=ES256;ppt=shaken', "control character"),
    (f'{TOKEN};info="<{URL}\\\x1b[31m>";alg=ES256;ppt=shaken', "control character"),  # a quoted-pair
    (f'{TOKEN};info=<{URL}>;alg=ES256;ppt="shaken\x1b[0m"', "control character"),
    (f'{TOKEN};info=<{URL}>;alg="ES\\\x08256";ppt=shaken', "control character"),
    (f'{TOKEN};info=<{URL}>;alg=ES256;ppt=shaken;x="a\x00b"', "control character"),
    (f'{TOKEN};info="< >";alg=ES256;ppt=shaken', "angle brackets"),  # quoted, the same URI rules
    (f'{TOKEN};info="{URL}";alg=ES256;ppt=shaken', "angle brackets"),  # once cut to "ttps://...o"
])
def test_control_characters_are_refused_where_the_grammar_has_none(value, message):
    """absoluteURI and token (info, alg, ppt) hold no control character, nor does a quoted-string's
    qdtext: an ESC sequence in an info URL would reach a terminal as the call's x5u."""
    with pytest.raises(identity.HeaderSyntaxError, match=message):
        identity.parse(value)


def test_a_quoted_pair_may_escape_a_control_character_in_a_generic_param():
    h = identity.parse(f'{TOKEN};info=<{URL}>;alg=ES256;ppt=shaken;x="a\\\x01b\tc"')  # RFC 3261 §25.1
    assert dict(h.params)["x"] == "a\x01b\tc"
