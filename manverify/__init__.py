"""manverify: STIR/SHAKEN and French MAN call verification for SIP platforms.

    verifier = manverify.Verifier(trust_anchors=["root.pem"], certificates="certs/")
    result = verifier.verify(identity_header, orig="+33612345678", dest="0198765432")
"""
from .errors import ConfigError, Error, InvalidKey, UsageError  # noqa: F401
from .es256 import backend  # noqa: F401

__version__ = "0.1.0"
