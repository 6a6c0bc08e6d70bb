"""TNAuthList (RFC 8226, OID 1.3.6.1.5.5.7.1.26): the numbers a STIR certificate may sign for.

ASN.1 (explicit tags):
    TNAuthorizationList ::= SEQUENCE SIZE (1..MAX) OF TNEntry
    TNEntry ::= CHOICE { spc [0] ServiceProviderCode, range [1] TelephoneNumberRange,
                         one [2] TelephoneNumber }
    TelephoneNumberRange ::= SEQUENCE { start TelephoneNumber, count INTEGER (2..MAX) }
    ServiceProviderCode, TelephoneNumber ::= IA5String
"""
from __future__ import annotations

from typing import Iterable, Tuple

OID = "1.3.6.1.5.5.7.1.26"


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def _ia5(text: str) -> bytes:
    return _tlv(0x16, text.encode("ascii"))


def _integer(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True)
    return _tlv(0x02, body)


def encode(
    spc: str | None = None,
    ranges: Iterable[Tuple[str, int]] = (),
    ones: Iterable[str] = (),
) -> bytes:
    """DER of a TNAuthorizationList. encode(spc="1001") == 30 08 a0 06 16 04 31 30 30 31."""
    entries = []
    if spc is not None:
        entries.append(_tlv(0xA0, _ia5(spc)))
    for start, count in ranges:
        entries.append(_tlv(0xA1, _tlv(0x30, _ia5(start) + _integer(count))))
    for tn in ones:
        entries.append(_tlv(0xA2, _ia5(tn)))
    if not entries:
        raise ValueError("a TNAuthList needs at least one entry")
    return _tlv(0x30, b"".join(entries))
