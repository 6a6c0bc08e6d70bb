"""manverify: STIR/SHAKEN and French MAN call verification for SIP platforms.

    verifier = manverify.Verifier(trust_anchors=["root.pem"], certificates="certs/")
    result = verifier.verify(identity_header, orig="+33612345678", dest="0198765432")
    if not result.ok: reply(result.sip_code, result.reason)
"""
import logging

from .errors import ConfigError, EngineError, Error, InvalidKey, InvalidNumber, UsageError
from .es256 import backend
from .result import HeaderResult, Result
from .signer import Signer
from .verifier import Verifier

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())  # the application decides where logs go

__all__ = [
    "ConfigError", "EngineError", "Error", "HeaderResult", "InvalidKey", "InvalidNumber", "Result", "Signer",
    "UsageError", "Verifier", "backend", "__version__",
]
