"""The one exception hierarchy: raised for the integrator's mistakes, never for call data.

Each class also inherits the builtin a Python programmer would catch (as pynacl does), so both
`except manverify.ConfigError` and `except ValueError` / `except TypeError` work.
"""


class Error(Exception):
    """Base of every exception manverify raises. Never raised directly."""


class ConfigError(Error, ValueError, TypeError):
    """A Verifier/Signer/policy setting is wrong: an unknown option name, a value of the wrong type
    or out of range, an unusable trust anchor set, an unknown profile."""


class UsageError(Error, TypeError):
    """An argument has the wrong type or shape (e.g. identity is neither str nor list of str)."""


class ReportLimited(UsageError):
    """A reporter sent more user reports than screening.lookup.report_limit within
    report_window_s: the report is refused (HTTP 429), not absorbed. `retry_after`: seconds until
    its count can fall (it falls by a slot of the window at a time)."""

    def __init__(self, message: str, retry_after: float = 0.0):
        super().__init__(message)
        self.retry_after = retry_after


class InvalidKey(Error, ValueError):
    """A key could not be loaded (not P-256, not on the curve, bad encoding)."""


class InvalidNumber(Error, ValueError):
    """A telephone number cannot be canonicalised (RFC 8224 §8.3)."""


class EngineError(Error, RuntimeError):
    """The signature engine refused its own arguments (a table of the wrong size, a buffer that does
    not fit): a fault in manverify or its build, never a verdict on the call. Integrations answer
    500 and log it."""
