"""The native engine's internals against a big-integer model of P-256, through the test hooks of
mv_native.h (compiled into a separate test build, tests/native_hooks.py), and the shipped ABI.

Field multiplication (portable, mulx/adx and the dedicated squaring), the variable-time scalar
inverse, table entries, the two-table sum u1·G + u2·Q including the infinity and doubling cases
of its final join, both SHA-256 implementations, the packed batch, and that the shipped module
exports exactly what manverify uses.
"""
import hashlib
import random
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from manverify import es256

from . import native_hooks

pytestmark = pytest.mark.skipif("native" not in es256.backends(), reason="the native extension is not built")

P = 2**256 - 2**224 + 2**192 + 2**96 - 1
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
     0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)
RNG = random.Random(20261122)


# --------------------------------------------------------------------------- the model
def add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2:
        if (y1 + y2) % P == 0:
            return None
        lam = (3 * x1 * x1 - 3) * pow(2 * y1, -1, P) % P
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (lam * lam - x1 - x2) % P
    return x3, (lam * (x1 - x3) - y1) % P


def mul(k, pt):
    acc = None
    for bit in bin(k)[2:] if k else "":
        acc = add(acc, acc)
        if bit == "1":
            acc = add(acc, pt)
    return acc


def enc(pt):
    return b"\x04" + pt[0].to_bytes(32, "big") + pt[1].to_bytes(32, "big")


def dec(raw, rc):
    if rc == 1:
        assert raw == bytes(65)
        return None
    assert rc == 0 and raw[0] == 4
    return int.from_bytes(raw[1:33], "big"), int.from_bytes(raw[33:], "big")


def test_model_sanity():
    assert (G[1] ** 2 - G[0] ** 3 + 3 * G[0] - B) % P == 0
    assert mul(N, G) is None and mul(N + 1, G) == G


# --------------------------------------------------------------------------- hooks
EDGE_FE = [0, 1, 2, P - 1, P - 2, 2**255, 2**224, 2**192, 2**96, 2**64 - 1, 2**256 - 2**224, (P - 1) // 2]


@pytest.fixture(scope="module", autouse=True)
def hooks():
    """The test build's ffi and lib, as this module's globals (every test here uses them)."""
    global ffi, lib
    ffi, lib = native_hooks.build()
    yield


def fe_mul(a, b, impl):
    out = ffi.new("unsigned char[32]")
    rc = lib.mv_test_fe_mul(out, a.to_bytes(32, "big"), b.to_bytes(32, "big"), impl)
    return rc, int.from_bytes(bytes(out), "big")


@pytest.mark.parametrize("impl", [0, 1, 2, 3])
def test_field_multiplication(impl):
    """Each implementation agrees with Python's integers, or is refused where the build or CPU has
    no mulx/adx (the -DMV_NO_ASM sanitizer pass; the main suite runs on CPUs that have them)."""
    if impl in (1, 3) and not lib.mv_features() & 2:
        assert fe_mul(1, 1, impl)[0] == lib.MV_EUNSUPPORTED
        return
    pairs = [(a, b) for a in EDGE_FE for b in EDGE_FE]
    pairs += [(RNG.randrange(P), RNG.randrange(P)) for _ in range(3000)]
    for a, b in pairs:
        rc, got = fe_mul(a, b, impl)
        assert rc == 0
        assert got == (a * a if impl in (2, 3) else a * b) % P, (hex(a), hex(b))


def test_field_rejects_unreduced():
    assert fe_mul(P, 1, 0)[0] == -1 and fe_mul(1, 2**256 - 1, 0)[0] == -1


def test_scalar_inverse():
    out = ffi.new("unsigned char[32]")
    values = [1, 2, 3, N - 1, N - 2, (N + 1) // 2, 2**255] + [2**k for k in range(0, 256, 7)]
    values += [N - 2**k for k in range(0, 200, 9)] + [RNG.randrange(1, N) for _ in range(3000)]
    for s in values:
        assert lib.mv_test_scalar_inverse(out, s.to_bytes(32, "big")) == 0
        assert int.from_bytes(bytes(out), "big") == pow(s, -1, N), hex(s)
    for s in (0, N, N + 1, 2**256 - 1):
        assert lib.mv_test_scalar_inverse(out, s.to_bytes(32, "big")) == -1


def _key(d):
    return es256.load_key(enc(mul(d, G)))


def test_table_entries():
    d = RNG.randrange(1, N)
    key = _key(d)
    q = mul(d, G)
    out = ffi.new("unsigned char[65]")
    for window, multiple in [(0, 1), (0, 2), (0, 64), (36, 1), (36, 64), (18, 33)] + [
            (RNG.randrange(37), RNG.randrange(1, 65)) for _ in range(20)]:
        assert lib.mv_test_table_entry(out, key._table, window, multiple) == 0
        assert dec(bytes(out), 0) == mul(multiple << (7 * window), q), (window, multiple)
    for window, multiple in [(37, 1), (0, 0), (0, 65)]:
        assert lib.mv_test_table_entry(out, key._table, window, multiple) == -1


def lincomb(key, u1, u2):
    out = ffi.new("unsigned char[65]")
    rc = lib.mv_test_lincomb(out, es256._GTABLE, key._table, u1.to_bytes(32, "big"), u2.to_bytes(32, "big"))
    return dec(bytes(out), rc)


def test_lincomb_random():
    for _ in range(15):
        d = RNG.randrange(1, N)
        key = _key(d)
        u1, u2 = RNG.randrange(2**256), RNG.randrange(2**256)
        assert lincomb(key, u1, u2) == mul((u1 + u2 * d) % N, G)


@pytest.mark.parametrize("d", [1, 2, 3, N - 1, 2**128 + 5])
def test_lincomb_special_joins(d):
    """u1·G and u2·Q equal (the join doubles), opposite (the sum is infinity), or one is zero."""
    key = _key(d)
    for u2 in (1, 2, 64, 65, RNG.randrange(1, N), N - 1):
        same = u2 * d % N
        assert lincomb(key, same, u2) == mul(2 * same % N, G)          # doubling in the join
        assert lincomb(key, (N - same) % N, u2) is None                # P + (-P)
        assert lincomb(key, 0, u2) == mul(same, G)
        assert lincomb(key, same, 0) == mul(same, G)
    assert lincomb(key, 0, 0) is None
    assert lincomb(key, N, N) is None                                  # scalars >= n recode too


def test_lincomb_scalars_beyond_n():
    key = _key(7)
    for u1, u2 in [(N + 1, 0), (2**256 - 1, 2**256 - 1), (N, 1), (2**255, 2**255 + 1)]:
        assert lincomb(key, u1, u2) == mul((u1 + 7 * u2) % N, G)


@pytest.mark.parametrize("impl", [0, 1])
def test_sha256_implementations(impl):
    """Each implementation agrees with hashlib, or is refused where there are no SHA extensions."""
    out = ffi.new("unsigned char[32]")
    if impl == 1 and not lib.mv_features() & 1:
        assert lib.mv_test_sha256_impl(out, b"", 0, 1) == lib.MV_EUNSUPPORTED
        return
    for n in list(range(0, 200)) + [255, 256, 257, 1000, 4095, 4096, 65537]:
        m = RNG.randbytes(n)
        assert lib.mv_test_sha256_impl(out, m, n, impl) == 0
        assert bytes(out) == hashlib.sha256(m).digest(), n
    assert lib.mv_test_sha256_impl(out, b"", 0, 7) == -1


def test_hooks_reject_blank_tables():
    blank = ffi.new("unsigned char[]", lib.mv_table_size())
    out = ffi.new("unsigned char[65]")
    one = (1).to_bytes(32, "big")
    assert lib.mv_test_lincomb(out, es256._GTABLE, blank, one, one) == -3
    assert lib.mv_test_table_entry(out, blank, 0, 1) == -3


def test_packed_batch_matches_single_and_splits():
    """mv_verify_batch_packed (what verify_many uses), whole and by sub-ranges, on 2 threads."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    privs = [ec.derive_private_key(d, ec.SECP256R1()) for d in (3, 5, 7)]
    keys = [es256.key_from_public(k.public_key()) for k in privs]
    ks, msgs, sigs = [], [], []
    for i in range(150):
        m = RNG.randbytes(i % 70)
        r, s = decode_dss_signature(privs[i % 3].sign(m, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        if i % 7 == 0:
            sig = sig[:63]                       # wrong length: invalid
        elif i % 11 == 0:
            sig = bytes(64)                      # r = s = 0
        elif i % 13 == 0:
            m += b"!"                            # another message
        ks.append(keys[(i + (i % 17 == 0)) % 3])  # sometimes the wrong key
        msgs.append(m)
        sigs.append(sig)
    expect = [es256.verify(k, m, s) for k, m, s in zip(ks, msgs, sigs)]
    assert 0 < sum(expect) < len(expect)
    for threads in (1, 2, 3):
        assert es256.verify_many(ks, msgs, sigs, threads=threads) == expect
    assert es256.verify_many([], [], [], threads=2) == []


def test_packed_batch_rejects_malformed_arguments():
    ffi, lib = es256._ffi, es256._lib  # the shipped module
    k = es256.key_from_public(ec.derive_private_key(3, ec.SECP256R1()).public_key())
    tables = ffi.new("unsigned char *[]", [k._table, k._table])
    out = ffi.new("int[]", [7, 7])
    sigs = bytes(128)
    gt = es256._GTABLE
    bad = [
        (b"ab", 2, [0, 2, 1], sigs, 128),        # offsets decrease
        (b"ab", 2, [0, 1, 3], sigs, 128),        # beyond msgs_len
        (b"ab", 2, [0, 1, 2], sigs, 127),        # sigs_len != 64 n
    ]
    for msgs, mlen, offs, s, slen in bad:
        rc = lib.mv_verify_batch_packed(gt, tables, msgs, mlen, ffi.new("size_t[]", offs), s, slen, out, 2)
        assert rc == -1 and list(out) == [7, 7]
    blank = ffi.new("unsigned char[]", lib.mv_table_size())
    assert lib.mv_verify_batch_packed(blank, tables, b"ab", 2, ffi.new("size_t[]", [0, 1, 2]), sigs, 128, out, 2) == -3
    assert lib.mv_verify_batch_packed(gt, tables, b"ab", 2, ffi.new("size_t[]", [0, 1, 2]), sigs, 128, out, 2) == 0
    assert list(out) == [0, 0]


def _shipped_functions():
    return {name for name in dir(es256._lib) if callable(getattr(es256._lib, name))}


def test_the_shipped_abi_is_what_manverify_uses():
    """Test hooks live only in the test build; every function the shipped module exports is called
    by es256.py, the engine's one gateway, and nothing else in the package imports the module."""
    package = Path(es256.__file__).resolve().parent
    used = set(re.findall(r"_lib\.(mv_\w+)\(", Path(es256.__file__).read_text()))
    assert _shipped_functions() == used
    assert not any(name.startswith("mv_test") for name in dir(es256._lib))
    importers = sorted(str(f.relative_to(package)) for f in package.rglob("*.py")
                       if re.search(r"^\s*from \._native import|import manverify\._native", f.read_text(), re.M))
    assert importers == ["es256.py"]


def test_every_native_call_releases_the_gil(tmp_path):
    """cffi's API mode wraps each C call in Py_BEGIN/END_ALLOW_THREADS; check the generated source
    of native/build.py, so a future cdef/option change that stops it is caught."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_mv_build", native_hooks.NATIVE / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "gen.c"
    mod.ffi.emit_c_code(str(out))
    src = out.read_text()
    wrappers = src.split("\nstatic PyObject *\n_cffi_f_")[1:]
    names = [w.split("(", 1)[0] for w in wrappers]
    assert set(names) == _shipped_functions()
    for name, body in zip(names, wrappers):
        assert "Py_BEGIN_ALLOW_THREADS" in body.split("\n}\n", 1)[0], name


def test_native_info_names_the_cpu_paths_the_engine_chose():
    features = lib.mv_features()  # the test build makes the same once-per-process choice
    assert es256.native_info()["cpu"] == [n for bit, n in ((1, "sha-ni"), (2, "mulx/adx")) if features & bit]
