"""The one exception hierarchy: raised for the integrator's mistakes, never for call data."""


class Error(Exception):
    """Base of every exception manverify raises. Never raised directly."""


class ConfigError(Error, ValueError):
    """A Verifier/Signer/policy setting is wrong (bad trust anchor, unknown profile, ...)."""


class UsageError(Error, TypeError):
    """An argument has the wrong type or shape (e.g. identity is neither str nor list of str)."""


class InvalidKey(Error, ValueError):
    """A key could not be loaded (not P-256, not on the curve, bad encoding)."""



class InvalidNumber(Error, ValueError):
    """A telephone number cannot be canonicalised (RFC 8224 §8.3)."""
