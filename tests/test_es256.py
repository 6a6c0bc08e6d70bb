"""The es256 boundary and the native engine: Wycheproof, invalid points, differential tests, and
the one table that turns the engine's return codes into verdicts or EngineError."""
import functools
import hashlib
import os

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given, settings, strategies as st

from manverify import es256
from manverify.errors import ConfigError, EngineError, InvalidKey

from . import native_hooks
from .conftest import DEST, NOW, ORIG, wycheproof

N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P = 2**256 - 2**224 + 2**192 + 2**96 - 1
BACKENDS = es256.backends()


def native_only(test):
    """A test of the native engine. In an install without it (no compiler: the pure-Python
    fallback), it asserts instead that the native backend is refused, so it never skips."""
    if "native" in BACKENDS:
        return test

    @functools.wraps(test)
    def refused(*args, **kwargs):
        with pytest.raises(ConfigError, match="native backend is not built"):
            es256.verify_with("native", None, b"", bytes(64))

    return refused


@pytest.fixture(scope="module")
def hooks():
    """(ffi, lib) of the engine's test build (tests/native_hooks.py)."""
    return native_hooks.build()


def _p1363_cases():
    data = wycheproof("ecdsa_secp256r1_sha256_p1363_test.json")
    cases = []
    for g in data["testGroups"]:
        point = bytes.fromhex(g["publicKey"]["uncompressed"])
        for t in g["tests"]:
            cases.append((point, t))
    return cases


CASES = _p1363_cases()


def test_wycheproof_p1363_cases_present():
    assert len(CASES) == 262


@pytest.mark.parametrize("backend", BACKENDS)
def test_wycheproof_p1363(backend):
    keys = {}
    failures = []
    for point, t in CASES:
        key = keys.get(point) or keys.setdefault(point, es256.load_key(point))
        got = es256.verify_with(backend, key, bytes.fromhex(t["msg"]), bytes.fromhex(t["sig"]))
        if got != (t["result"] == "valid"):
            failures.append((t["tcId"], t["comment"], t["result"]))
    assert not failures, failures
    # 70 of the valid vectors have s > n/2: ES256 accepts high S.
    assert sum(1 for _, t in CASES if t["result"] == "valid") == 173


@native_only
def test_wycheproof_p1363_batch():
    keys = {p: es256.load_key(p) for p, _ in CASES}
    got = es256._verify_many_native([keys[p] for p, _ in CASES], [bytes.fromhex(t["msg"]) for _, t in CASES],
                                    [bytes.fromhex(t["sig"]) for _, t in CASES])
    assert got == [t["result"] == "valid" for _, t in CASES]


ECPOINT_CASES = [t for g in wycheproof("ecdh_secp256r1_ecpoint_test.json")["testGroups"] for t in g["tests"]]


@pytest.mark.parametrize("case", ECPOINT_CASES, ids=lambda t: f"tc{t['tcId']}")
def test_wycheproof_points(case, request):
    public = bytes.fromhex(case["public"])
    if case["result"] == "invalid" or public[:1] != b"\x04":
        with pytest.raises(InvalidKey):
            es256.load_key(public)
        return
    key = es256.load_key(public)
    if "native" in BACKENDS:
        # The key's table times the ECDH private scalar must give the published shared x.
        ffi, lib = request.getfixturevalue("hooks")
        out = ffi.new("unsigned char[65]")
        assert lib.mv_test_table_mul(out, key._table, bytes.fromhex(case["private"]).rjust(32, b"\0")[-32:]) == 0
        assert bytes(out)[1:33].hex() == case["shared"]


@pytest.mark.parametrize("bad", [b"", b"\x04" + b"\0" * 64, b"\x04" + b"\xff" * 64, b"\x02" + b"\1" * 32,
                                 b"\x04" + P.to_bytes(32, "big") + b"\0" * 32, "04" * 65])
def test_load_key_rejects(bad):
    with pytest.raises(InvalidKey):
        es256.load_key(bad)


# ------------------------------------------------------------------ differential tests
_KEYS = [ec.generate_private_key(ec.SECP256R1()) for _ in range(4)]
_LOADED = [es256.key_from_public(k.public_key()) for k in _KEYS]


def _sign(i, msg):
    r, s = decode_dss_signature(_KEYS[i].sign(msg, ec.ECDSA(hashes.SHA256())))
    return r, s


def _raw(r, s):
    return (r % 2**256).to_bytes(32, "big") + (s % 2**256).to_bytes(32, "big")


def _all_agree(key, msg, sig):
    verdicts = {b: es256.verify_with(b, key, msg, sig) for b in BACKENDS}
    assert len(set(verdicts.values())) == 1, verdicts
    return verdicts[BACKENDS[0]]


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 3), st.binary(max_size=300),
       st.sampled_from(["good", "high-s", "r0", "s0", "rn", "sn", "rn-1", "sn-1", "swap", "flip", "random",
                        "r+n", "s+n", "rbig"]),
       st.integers(0, 511))
def test_differential_against_cryptography(i, msg, mutation, bit):
    r, s = _sign(i, msg)
    if mutation == "high-s":
        s = N - s  # also valid
    elif mutation == "r0":
        r = 0
    elif mutation == "s0":
        s = 0
    elif mutation == "rn":
        r = N
    elif mutation == "sn":
        s = N
    elif mutation == "rn-1":
        r = N - 1
    elif mutation == "sn-1":
        s = N - 1
    elif mutation == "swap":
        r, s = s, r
    elif mutation == "random":
        r, s = int.from_bytes(os.urandom(32), "big"), int.from_bytes(os.urandom(32), "big")
    elif mutation == "r+n":
        r = r + N  # same residue, out of range: must be rejected
    elif mutation == "s+n":
        s = s + N
    elif mutation == "rbig":
        r = P - 1
    sig = _raw(r, s)
    if mutation == "flip":
        b = bytearray(sig)
        b[bit // 8 % 64] ^= 1 << (bit % 8)
        sig = bytes(b)
    got = _all_agree(_LOADED[i], msg, sig)
    if mutation in ("good", "high-s"):
        assert got is True
    if mutation in ("r0", "s0", "rn", "sn", "r+n", "s+n", "flip"):
        assert got is False


def test_sum_at_infinity_is_rejected():
    # Choose r so that u1*G + u2*Q is the point at infinity: u1 + u2*d = 0, i.e. r = -e/d.
    key = ec.generate_private_key(ec.SECP256R1())
    d = key.private_numbers().private_value
    msg = b"infinity"
    e = int.from_bytes(hashlib.sha256(msg).digest(), "big") % N
    r = (-e * pow(d, -1, N)) % N
    for s in (1, 2, 12345, N - 1):
        assert _all_agree(es256.key_from_public(key.public_key()), msg, _raw(r, s)) is False


def test_doubling_inside_the_sum():
    # Q = G and r = e make u1*G and u2*Q equal: the sum needs the doubling branch.
    g_key = es256.load_key(es256._G)
    for msg in (b"double", b"again", b"x" * 100):
        e = int.from_bytes(hashlib.sha256(msg).digest(), "big") % N
        for s in (1, 3, N - 2):
            # With d = 1: R = (e/s + e/s) G = 2e/s G; valid iff x(R) mod n = r = e.
            _all_agree(g_key, msg, _raw(e, s))


@native_only
@pytest.mark.parametrize("k", [0, 1, 2, 3, 63, 64, 65, 127, 128, 2**7 * 64, N - 1, N, N + 1, 2**255, 2**256 - 1,
                               int("5" * 64, 16), int("a" * 64, 16)])
def test_table_matches_double_and_add(k, hooks):
    ffi, lib = hooks
    for key in (_LOADED[0], es256.load_key(es256._G)):
        a = ffi.new("unsigned char[65]")
        b = ffi.new("unsigned char[65]")
        kb = k.to_bytes(32, "big")
        assert lib.mv_test_table_mul(a, key._table, kb) == lib.mv_test_naive_mul(b, key.point, kb)
        assert bytes(a) == bytes(b)
        if 0 < k < N:
            expect = ec.derive_private_key(k, ec.SECP256R1()).public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
            if key.point == es256._G:
                assert bytes(a) == expect


@native_only
def test_abi_misuse_is_reported_not_crashed():
    lib, ffi = es256._lib, es256._ffi
    blank = ffi.new("unsigned char[]", lib.mv_table_size())
    k = _LOADED[0]
    assert lib.mv_verify(es256._GTABLE, blank, b"m", 1, b"\1" * 64, 64) == lib.MV_ETABLE
    assert lib.mv_verify(ffi.NULL, k._table, b"m", 1, b"\1" * 64, 64) == lib.MV_ETABLE
    assert lib.mv_verify(es256._GTABLE, k._table, b"m", 1, b"\1" * 63, 63) == lib.MV_INVALID
    assert lib.mv_verify(es256._GTABLE, k._table, ffi.NULL, 5, b"\1" * 64, 64) == lib.MV_EARG
    short = ffi.new("unsigned char[]", 100)
    scratch = ffi.new("unsigned char[]", lib.mv_scratch_size())
    assert lib.mv_key_load(short, 100, scratch, len(scratch), k.point, 65) == lib.MV_EARG
    assert lib.mv_key_load(blank, len(blank), scratch, 8, k.point, 65) == lib.MV_EARG
    assert lib.mv_key_load(blank, len(blank), scratch, len(scratch), k.point, 64) == lib.MV_EPOINT
    out = ffi.new("int[]", 2)
    tables = ffi.new("unsigned char *[]", [k._table, blank])
    offsets = ffi.new("size_t[]", [0, 1, 2])
    assert lib.mv_verify_batch_packed(es256._GTABLE, tables, b"ab", 2, offsets, b"\1" * 128, 128, out, 2) == 0
    assert list(out) == [lib.MV_INVALID, lib.MV_ETABLE]


# ------------------------------------------------------------------ the engine's return codes
@native_only
def test_one_table_holds_every_engine_code():
    """Only MV_VALID and MV_INVALID are verdicts; every MV_E* code the engine has is in the table of
    refusals (EngineError), so a code added to mv.h without a meaning here fails this test."""
    lib = es256._lib
    assert es256._VERDICTS == {lib.MV_VALID: True, lib.MV_INVALID: False}
    codes = {name: getattr(lib, name) for name in dir(lib) if name.startswith("MV_E")}
    assert codes and set(codes.values()) == set(es256._REFUSALS)
    for name, code in codes.items():
        assert code not in es256._VERDICTS
        with pytest.raises(EngineError, match=f"mv_verify returned {code} \\({name}, "):
            raise es256._refused("mv_verify", code)
    with pytest.raises(EngineError, match="returned -99 .a code manverify does not know"):
        es256._check("mv_key_load", -99)


@pytest.fixture
def native_backend(monkeypatch):
    """es256 on the native engine, also in the cryptography-backend CI run (the engine is built)."""
    monkeypatch.setattr(es256, "_BACKEND", "native")


def _unloaded_key():
    """A key whose table mv_key_load never filled: what the engine must refuse (MV_ETABLE)."""
    k = _LOADED[0]
    return es256.PublicKey(k.point, k._crypto, es256._ffi.new("unsigned char[]", es256._lib.mv_table_size()))


@native_only
def test_refused_calls_raise_engine_error_never_a_verdict(native_backend):
    k, bad = _LOADED[0], _unloaded_key()
    msg = b"refused"
    r, s = _sign(0, msg)
    good = _raw(r, s)
    for call in (lambda: es256.verify(bad, msg, good), lambda: es256.verify_with("native", bad, msg, good),
                 lambda: es256.verify_many([k, bad], [msg, msg], [good, good]),
                 lambda: es256.verify_many([k] * 40 + [bad] * 40, [msg] * 80, [good] * 80, threads=2)):
        with pytest.raises(EngineError, match="MV_ETABLE"):
            call()
    with pytest.raises(EngineError, match="mv_key_load returned -2 .MV_EPOINT"):
        es256._native_table(b"\x04" + bytes(64))  # load_key refuses this first (InvalidKey)
    with pytest.raises(EngineError, match="mv_shaken_scan returned -1 .MV_EARG"):
        es256.shaken_scan(b"a.b.c", (5, 3))   # token ends that go back
    assert es256.verify(k, msg, good) is True and es256.verify_many([k], [msg], [good]) == [True]


@native_only
def test_a_refusing_engine_raises_out_of_the_verifier(native_backend, monkeypatch, verifier, signer):
    """An integration answers 500 and logs EngineError: the call must not become a 438."""
    identity = signer.sign(ORIG, DEST, iat=NOW)
    assert verifier.verify(identity, orig=ORIG, dest=DEST, now=NOW).ok
    monkeypatch.setattr(es256, "_GTABLE", _unloaded_key()._table)
    with pytest.raises(EngineError, match="MV_ETABLE"):
        verifier.verify(identity, orig=ORIG, dest=DEST, now=NOW)
    with pytest.raises(EngineError, match="MV_ETABLE"):
        verifier.verify_many([dict(identity=identity, orig=ORIG, dest=DEST, now=NOW)] * 70)


def test_verify_many_matches_verify():
    msgs = [os.urandom(i) for i in range(150)]
    keys, sigs = [], []
    for i, m in enumerate(msgs):
        r, s = _sign(i % 4, m)
        sig = _raw(r, s)
        if i % 5 == 0:
            sig = sig[:-1] + bytes([sig[-1] ^ 1])
        keys.append(_LOADED[i % 4])
        sigs.append(sig)
    assert es256.verify_many(keys, msgs, sigs) == [es256.verify(k, m, s) for k, m, s in zip(keys, msgs, sigs)]
    assert es256.verify_many([], [], []) == []


def test_backend_reporting():
    assert es256.backend() in BACKENDS
    assert es256.backend() == ("native" if "native" in BACKENDS and os.environ.get("MANVERIFY_BACKEND") != "cryptography"
                               else "cryptography")
