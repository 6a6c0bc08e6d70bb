"""The checks of one call, each rule written once.

The verifier's common path (one usual SHAKEN header, decoded by the native scanner) and its
general path (anything else, with the precise failure) call the same functions here: a fast path
may skip work, never restate a rule. So does sip.check_format (the transit role).
"""
from __future__ import annotations

from typing import Union

from . import identity
from .passport import PassportError


def header_text(value: Union[str, bytes]) -> str:
    """An Identity header value fit to be parsed: text, ASCII, at most identity.MAX_HEADER_BYTES.
    Raises PassportError (438) for anything else."""
    if type(value) is not str:
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise PassportError(438, "Identity header is not ASCII") from None
    if len(value) > identity.MAX_HEADER_BYTES:
        raise PassportError(438, f"Identity header is {len(value)} bytes (limit {identity.MAX_HEADER_BYTES})")
    if not value.isascii():
        raise PassportError(438, "Identity header is not ASCII")
    return value
