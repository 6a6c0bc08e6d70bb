"""A focused run of the native engine for valgrind memcheck: key loads, every Wycheproof P1363
vector one by one and as a batch, and ABI misuse. Slow under valgrind, so kept small."""
import json
import os
import sys
from pathlib import Path

from manverify import es256

root = os.environ.get("MANVERIFY_VECTORS") or Path(__file__).resolve().parents[2] / "shared" / "vectors"
vectors = Path(root) / "wycheproof"
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
print(f"memcheck: {len(expect)} vectors, {len(set(map(id, keys)))} keys ok")
