"""TNAuthList (RFC 8226, OID 1.3.6.1.5.5.7.1.26): the numbers a STIR certificate may sign for.

ASN.1 (explicit tags):
    TNAuthorizationList ::= SEQUENCE SIZE (1..MAX) OF TNEntry
    TNEntry ::= CHOICE { spc [0] ServiceProviderCode, range [1] TelephoneNumberRange,
                         one [2] TelephoneNumber }
    TelephoneNumberRange ::= SEQUENCE { start TelephoneNumber, count INTEGER (2..MAX) }
    ServiceProviderCode, TelephoneNumber ::= IA5String
"""
from __future__ import annotations

from typing import Iterable, NamedTuple, Tuple

from ._der import read_tlv, tlv as _tlv

OID = "1.3.6.1.5.5.7.1.26"


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


class TNAuthListError(ValueError):
    """The extension's DER is not a TNAuthorizationList."""


class TNAuthList(NamedTuple):
    """Decoded TNAuthorizationList: service provider codes, number ranges and single numbers."""

    spcs: Tuple[str, ...] = ()
    ranges: Tuple[Tuple[str, int], ...] = ()
    ones: Tuple[str, ...] = ()

    def covers(self, tn: str) -> bool:
        """Whether canonical number `tn` is one of the listed numbers or inside a listed range."""
        if tn in self.ones:
            return True
        for start, count in self.ranges:
            if len(tn) == len(start) and tn.isdigit() and start.isdigit():
                if int(start) <= int(tn) < int(start) + count:
                    return True
        return False


_MAX_DER = 65536
_TN_CHARS = frozenset("0123456789#*")


def _read_tlv(der: bytes, pos: int, end: int) -> Tuple[int, int, int]:
    return read_tlv(der, pos, end, TNAuthListError)


def _ia5_string(der: bytes, pos: int, end: int, what: str) -> str:
    tag, start, stop = _read_tlv(der, pos, end)
    if tag != 0x16:
        raise TNAuthListError(f"{what} is not an IA5String")
    if stop != end:
        raise TNAuthListError(f"trailing bytes after {what}")
    raw = der[start:stop]
    if not raw or any(b > 0x7E or b < 0x20 for b in raw):
        raise TNAuthListError(f"{what} is empty or not printable IA5")
    return raw.decode("ascii")


def _telephone_number(der: bytes, pos: int, end: int) -> str:
    tn = _ia5_string(der, pos, end, "TelephoneNumber")
    if len(tn) > 15 or not set(tn) <= _TN_CHARS:
        raise TNAuthListError(f"TelephoneNumber {tn!r} is not 1-15 of 0-9 # *")
    return tn


def decode(der: bytes) -> TNAuthList:
    """Decode the DER value of a TNAuthList extension; raise TNAuthListError when malformed."""
    if not isinstance(der, (bytes, bytearray)) or len(der) > _MAX_DER:
        raise TNAuthListError("not bytes, or larger than 64 KiB")
    der = bytes(der)
    tag, pos, end = _read_tlv(der, 0, len(der))
    if tag != 0x30 or end != len(der):
        raise TNAuthListError("not a single SEQUENCE")
    spcs, ranges, ones = [], [], []
    while pos < end:
        tag, start, stop = _read_tlv(der, pos, end)
        if tag == 0xA0:
            spcs.append(_ia5_string(der, start, stop, "ServiceProviderCode"))
        elif tag == 0xA1:
            ranges.append(_range(der, start, stop))
        elif tag == 0xA2:
            ones.append(_telephone_number(der, start, stop))
        else:
            raise TNAuthListError(f"unknown TNEntry tag 0x{tag:02x}")
        pos = stop
    if not (spcs or ranges or ones):
        raise TNAuthListError("empty TNAuthList")
    return TNAuthList(tuple(spcs), tuple(ranges), tuple(ones))


def _range(der: bytes, pos: int, end: int) -> Tuple[str, int]:
    tag, start, stop = _read_tlv(der, pos, end)
    if tag != 0x30 or stop != end:
        raise TNAuthListError("TelephoneNumberRange is not a SEQUENCE")
    tag, s0, s1 = _read_tlv(der, start, stop)
    first = _telephone_number(der, start, s1)
    tag, i0, i1 = _read_tlv(der, s1, stop)
    if tag != 0x02 or i1 != stop or i0 == i1:
        raise TNAuthListError("TelephoneNumberRange count is not an INTEGER")
    raw = der[i0:i1]
    if len(raw) > 8 or (len(raw) > 1 and (raw[0] == 0 and raw[1] < 0x80)):
        raise TNAuthListError("range count is not a minimal small INTEGER")
    count = int.from_bytes(raw, "big", signed=True)
    if count < 2:
        raise TNAuthListError("range count must be at least 2")
    return first, count
