"""x5u URL rules: any text gives an accepted (scheme, host, port, path) or a FetchError, and
what is accepted obeys every rule; address checks refuse every special-purpose range."""
import pytest
from hypothesis import given, strategies as st

from manverify.certs.fetch import FetchError, _allowed_address, check_url

URLISH = st.one_of(
    st.text(max_size=80),
    st.builds(lambda s, h, p, rest: f"{s}://{h}{p}/{rest}",
              st.sampled_from(["https", "http", "HTTPS", "ftp", ""]),
              st.text(alphabet="abc.-@:[]1%", min_size=0, max_size=20),
              st.sampled_from(["", ":443", ":8443", ":80", ":0", ":99999", ":x"]),
              st.text(max_size=20)),
)


@given(URLISH)
def test_check_url_accepts_only_what_the_rules_allow(url):
    try:
        scheme, host, port, path = check_url(url, allow_http=False)
    except FetchError:
        return
    assert scheme == "https" and port in (443, 8443) and host
    assert "@" not in url.split("//", 1)[1].split("/", 1)[0]
    assert "?" not in url and "#" not in url


@pytest.mark.parametrize("ip", [
    "10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "224.0.0.1", "255.255.255.255", "192.0.2.1", "198.18.0.1", "::1", "fe80::1", "fc00::1", "ff02::1",
    "::ffff:10.0.0.1", "::ffff:127.0.0.1", "2001:db8::1", "::",
    "64:ff9b::a00:1", "64:ff9b::7f00:1", "2002:a00:1::", "2002:a9fe:a9fe::1", "64:ff9b:1::808:808",
])
def test_special_purpose_addresses_are_refused(ip):
    assert not _allowed_address(ip, allow_loopback=False)


def test_public_addresses_and_lab_loopback():
    assert _allowed_address("8.8.8.8", False) and _allowed_address("2606:4700::1111", False)
    assert _allowed_address("64:ff9b::808:808", False) and _allowed_address("2002:808:808::", False)
    assert _allowed_address("127.0.0.1", True) and _allowed_address("::1", True)
    assert not _allowed_address("10.0.0.1", True)
