"""What an integrator writes against manverify's public API. CI type-checks it with
`mypy --strict` against the *installed* package (py.typed and the hints must carry it) and runs it.
The lab PKI stands in for the operator's trust anchor and signer certificate."""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

import manverify
from manverify import HeaderResult, Result, Signer, Verifier
from manverify.pki import lab_pki


def reject_with(result: Result) -> Optional[str]:
    """The Reason header a proxy adds when it rejects the call; None lets the call through."""
    if result.ok:
        return None
    code: Optional[int] = result.sip_code
    return f"{code} {result.reason}; {result.reason_header()}"


def summary(result: Result) -> Dict[str, Any]:
    out: Dict[str, Any] = result.to_dict()
    headers: List[HeaderResult] = list(result.headers)
    return {"ok": result.ok, "verstat": result.verstat, "attest": result.attest, "spc": result.spc,
            "headers": len(headers), "detail": out["detail"]}


def main() -> None:
    now = int(time.time())
    lab = lab_pki(spc="1001", now=now)
    signer = Signer(lab.signer.key_pem, lab.x5u)
    verifier = Verifier(trust_anchors=[lab.root.pem], certificates={lab.x5u: lab.chain_pem})
    header: str = signer.sign(orig="33612345678", dest="33198765432", attest="A", iat=now)

    good = verifier.verify(header, orig="+33612345678", dest="01 98 76 54 32", now=now)
    stale = verifier.verify([header], orig="+33612345678", dest="0198765432", now=now + 3600)
    batch = verifier.verify_many([{"identity": header, "orig": "+33612345678", "dest": "0198765432", "now": now}])
    assert good.ok and reject_with(good) is None and all(r.ok for r in batch)
    assert not stale.ok and stale.sip_code == 403
    try:
        Verifier(trust_anchors=[])
    except manverify.ConfigError as e:
        print("refused as it should be:", e)
    print(summary(good))
    print(reject_with(stale))
    print(f"manverify {manverify.__version__}, backend {manverify.backend()}")


if __name__ == "__main__":
    main()
