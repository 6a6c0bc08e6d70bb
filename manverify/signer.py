"""The authentication service: sign a call's identity into a full-form Identity header value."""
from __future__ import annotations

import time
import uuid
from typing import Callable, Iterable, Optional, Union

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from . import tn
from .errors import ConfigError, UsageError
from .passport import ATTEST, b64encode, canonical_json


class Signer:
    """Signs SHAKEN (and div) PASSporTs with one operator key.

        signer = Signer(key_pem, x5u="https://certs.example.fr/op.pem")
        value = signer.sign(orig="+33612345678", dest="0198765432", attest="A")

    iat is the signer's clock (`clock`, epoch seconds) unless given; a given iat must lie within
    ±max_age seconds of that clock, the window a verifier judges freshness by (Verifier's
    max_age): a token dated later would become "fresh" in the future, one dated earlier is
    stale already. Tests and labs that want a token of another time give the Signer that clock.
    """

    def __init__(self, private_key_pem: Union[bytes, str, ec.EllipticCurvePrivateKey], x5u: str, *,
                 max_age: float = 60, clock: Callable[[], float] = time.time):
        if isinstance(private_key_pem, ec.EllipticCurvePrivateKey):
            key = private_key_pem
        else:
            if isinstance(private_key_pem, str):
                private_key_pem = private_key_pem.encode()
            if not isinstance(private_key_pem, bytes):
                raise ConfigError("private_key_pem must be PEM bytes/str or an EC private key")
            try:
                key = serialization.load_pem_private_key(private_key_pem, password=None)
            except (ValueError, TypeError) as e:
                raise ConfigError(f"cannot load the signing key: {e}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ConfigError("ES256 signing needs a P-256 (secp256r1) private key")
        if not isinstance(x5u, str) or not x5u.startswith(("https://", "http://")):
            raise ConfigError("x5u must be the http(s) URL of the signer's certificate chain")
        if isinstance(max_age, bool) or not isinstance(max_age, (int, float)) or not 0 < max_age < float("inf"):
            raise ConfigError(f"max_age must be a positive number of seconds, not {max_age!r}")
        if not callable(clock):
            raise ConfigError(f"clock must be a callable returning epoch seconds, not {type(clock).__name__}")
        self._key = key
        self.x5u = x5u
        self.max_age = max_age
        self._clock = clock

    def _token(self, header: dict, claims: dict) -> str:
        signing_input = b64encode(canonical_json(header)) + "." + b64encode(canonical_json(claims))
        der = self._key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input + "." + b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def _header_value(self, token: str, ppt: str) -> str:
        return f"{token};info=<{self.x5u}>;alg=ES256;ppt={ppt}"

    def passport(
        self,
        orig: str,
        dest: Union[str, Iterable[str]],
        attest: str = "A",
        origid: Optional[str] = None,
        iat: Optional[int] = None,
    ) -> str:
        """A bare SHAKEN PASSporT token (header.claims.signature)."""
        if attest not in ATTEST:
            raise UsageError(f"attest must be one of A, B, C, not {attest!r}")
        claims = {
            "attest": attest,
            "dest": {"tn": _numbers(dest)},
            "iat": self._iat(iat),
            "orig": {"tn": tn.canonical(orig)},
            "origid": origid if origid is not None else str(uuid.uuid4()),
        }
        return self._token(self._jose("shaken"), claims)

    def sign(
        self,
        orig: str,
        dest: Union[str, Iterable[str]],
        attest: str = "A",
        origid: Optional[str] = None,
        iat: Optional[int] = None,
    ) -> str:
        """A full-form Identity header value (without the "Identity:" name)."""
        return self._header_value(self.passport(orig, dest, attest, origid, iat), "shaken")

    def sign_div(
        self, orig: str, dest: Union[str, Iterable[str]], div: str, iat: Optional[int] = None
    ) -> str:
        """A div PASSporT (RFC 8946) for a call retargeted from `div` to `dest`."""
        claims = {
            "dest": {"tn": _numbers(dest)},
            "div": {"tn": tn.canonical(div)},
            "iat": self._iat(iat),
            "orig": {"tn": tn.canonical(orig)},
        }
        return self._header_value(self._token(self._jose("div"), claims), "div")

    def sign_claims(self, claims: dict, ppt: str = "shaken", header: Optional[dict] = None) -> str:
        """Sign arbitrary claims (and optionally a custom JOSE header) into an Identity value.

        For labs and tests that need tokens the normal API refuses to make (attest "D", an iat
        string, an RS256 header...). Nothing is validated or canonicalised here.
        """
        return self._header_value(self._token(header or self._jose(ppt), claims), ppt)

    def _iat(self, iat: Optional[int]) -> int:
        now = self._clock()
        if iat is None:
            return int(now)
        if type(iat) is not int:
            raise UsageError(f"iat must be an int (epoch seconds), not {type(iat).__name__}")
        # compared, not subtracted: an int of any size against a float never overflows
        if not now - self.max_age <= iat <= now + self.max_age:
            shown = iat if -10 ** 20 < iat < 10 ** 20 else f"a {iat.bit_length()}-bit number"
            raise UsageError(f"iat {shown} is outside the signer's freshness window "
                             f"(its clock {int(now)} ± max_age {self.max_age} s)")
        return iat

    def _jose(self, ppt: str) -> dict:
        return {"alg": "ES256", "ppt": ppt, "typ": "passport", "x5u": self.x5u}


def _numbers(dest) -> list:
    if isinstance(dest, str):
        dest = [dest]
    out = [tn.canonical(d) for d in dest]
    if not out:
        raise UsageError("dest needs at least one number")
    return out

