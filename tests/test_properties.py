"""Properties over random input: round trips verify, mutations never do, nothing raises."""
import string

from hypothesis import HealthCheck, given, settings, strategies as st

from manverify import tn

from .conftest import NOW

digits = st.text(alphabet=string.digits, min_size=9, max_size=9)
french = st.builds(lambda p, d: f"0{p}{d}", st.sampled_from("1234567 9".replace(" ", "")), digits)
attest = st.sampled_from("ABC")
iat_offset = st.integers(min_value=-60, max_value=60)

fast = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@fast
@given(orig=french, dest=french, attest=attest, offset=iat_offset)
def test_sign_verify_round_trip(verifier, signer, orig, dest, attest, offset):
    h = signer.sign(orig, dest, attest=attest, iat=NOW + offset)
    r = verifier.verify(h, orig=orig, dest=dest, now=NOW)
    assert r.ok, r.detail
    assert r.attest == attest and r.orig_tn == tn.canonical(orig)


@fast
@given(orig=french, dest=french, offset=st.integers(min_value=61, max_value=10**6), sign=st.sampled_from((-1, 1)))
def test_outside_the_window_is_stale(verifier, signer, orig, dest, offset, sign):
    h = signer.sign(orig, dest, iat=NOW + sign * offset)
    assert verifier.verify(h, orig=orig, dest=dest, now=NOW).sip_code == 403


@fast
@given(data=st.data())
def test_mutated_tokens_never_verify(verifier, signer, data):
    h = signer.sign("0612345678", "0198765432", iat=NOW)
    token, params = h.split(";", 1)
    pos = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    alphabet = string.ascii_letters + string.digits + "-_.=+/ "
    ch = data.draw(st.sampled_from(alphabet).filter(lambda c: c != token[pos]))
    mutated = token[:pos] + ch + token[pos + 1:]
    r = verifier.verify(f"{mutated};{params}", orig="0612345678", dest="0198765432", now=NOW)
    assert not r.ok
    assert r.sip_code in (403, 436, 437, 438)


@fast
@given(st.one_of(st.text(max_size=600), st.binary(max_size=600),
                 st.lists(st.one_of(st.text(max_size=200), st.binary(max_size=200)), max_size=5)))
def test_verify_never_raises_on_call_data(verifier, value):
    r = verifier.verify(value, orig="0612345678", dest="0198765432", now=NOW)
    assert not r.ok and r.sip_code in (400, 403, 428, 436, 437, 438)


@fast
@given(orig=st.text(max_size=40), dest=st.text(max_size=40), date=st.one_of(st.none(), st.text(max_size=40)))
def test_any_call_numbers_and_date(verifier, signer, orig, dest, date):
    h = signer.sign("0612345678", "0198765432", iat=NOW)
    r = verifier.verify(h, orig=orig, dest=dest, date=date, now=NOW)
    assert r.ok in (True, False) and (r.ok or r.sip_code in (400, 403, 438))
