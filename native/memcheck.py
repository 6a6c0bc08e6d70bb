"""A focused run of the native engine for valgrind memcheck: key loads, every Wycheproof P1363
vector one by one and as a batch, ABI misuse, and the PASSporT scanner on signed, truncated and
mutated tokens. Slow under valgrind, so kept small."""
import json
import sys
from pathlib import Path

from manverify import es256

vectors = Path(__file__).resolve().parents[1] / "tests" / "vectors" / "wycheproof"
data = json.loads((vectors / "ecdsa_secp256r1_sha256_p1363_test.json").read_text())
keys, msgs, sigs, expect = [], [], [], []
for g in data["testGroups"][:12]:
    key = es256.load_key(bytes.fromhex(g["publicKey"]["uncompressed"]))
    for t in g["tests"]:
        keys.append(key)
        msgs.append(bytes.fromhex(t["msg"]))
        sigs.append(bytes.fromhex(t["sig"]))
        expect.append(t["result"] == "valid")
single = [es256.verify(k, m, s) for k, m, s in zip(keys, msgs, sigs)]
batch = es256.verify_many(keys, msgs, sigs)
assert single == expect == batch, "verdict mismatch"
for bad in (b"\x04" + b"\0" * 64, b"\x04" + b"\xff" * 64):
    try:
        es256.load_key(bad)
        sys.exit("invalid point accepted")
    except es256.InvalidKey:
        pass

# The scanner: a real token, every prefix of it, and one-byte edits; batch and one by one agree.
from manverify import scan  # noqa: E402
from manverify.passport import b64encode, canonical_json  # noqa: E402

claims = {"attest": "A", "dest": {"tn": ["33198765432", "33612345679"]}, "iat": 1700000000,
          "orig": {"tn": "33612345678"}, "origid": "4437c7eb-8f7a-4f8d-a6d2-0f3c1e8a5b0d"}
header = {"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": "https://certs.example.fr/op.pem"}
token = f"{b64encode(canonical_json(header))}.{b64encode(canonical_json(claims))}.{b64encode(bytes(range(64)))}".encode()
tokens = [token[:i] for i in range(0, len(token) + 1, 7)] + [token]
tokens += [token[:i] + b"." + token[i + 1:] for i in range(0, len(token), 13)]
tokens += [token[:i] + b"\xff" + token[i + 1:] for i in range(0, len(token), 17)]
one_by_one = [scan.scan_one(t) for t in tokens]
assert scan.scan(tokens) == one_by_one, "batch and one-by-one scans differ"
assert scan.scan_one(token) is not None, "the scanner declined a canonical token"
print(f"memcheck: {len(expect)} vectors, {len(set(map(id, keys)))} keys, {len(tokens)} scanned tokens ok")
