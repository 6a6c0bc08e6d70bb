"""The few DER primitives manverify reads and writes itself: TNAuthList (no X.509 library decodes
it) and the subject of a certificate the X.509 parser refuses (to name it in a warning)."""
from __future__ import annotations

from typing import Optional, Tuple, Type


def tlv(tag: int, body: bytes) -> bytes:
    """One DER element: tag, definite length, body."""
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def read_tlv(der: bytes, pos: int, end: int, error: Type[Exception] = ValueError) -> Tuple[int, int, int]:
    """(tag, body start, body end) of the DER element at pos; strict definite lengths."""
    if pos + 2 > end:
        raise error("truncated element")
    tag = der[pos]
    if tag & 0x1F == 0x1F:
        raise error("multi-byte tags are not used here")
    first = der[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 3:
            raise error("indefinite or oversized length")
        if pos + n > end:
            raise error("truncated length")
        length = int.from_bytes(der[pos:pos + n], "big")
        if der[pos] == 0 or length < 0x80:
            raise error("length is not in minimal DER form")
        pos += n
    if pos + length > end:
        raise error("element runs past its container")
    return tag, pos, pos + length


_ATTRIBUTES = {
    "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU",
    "2.5.4.5": "serialNumber",
}
_STRINGS = (0x0C, 0x13, 0x16, 0x14)  # UTF8String, PrintableString, IA5String, TeletexString


def _oid(body: bytes) -> str:
    arcs, value = [], 0
    for b in body:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        return ""
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, [first, arcs[0] - 40 * first] + arcs[1:]))


def certificate_subject(der: bytes) -> Optional[str]:
    """The subject of a DER certificate as "CN=…,O=…", read leniently (no signature, algorithm
    or extension is looked at); None when even that much cannot be read."""
    try:
        _, pos, end = read_tlv(der, 0, len(der))  # Certificate
        _, pos, end = read_tlv(der, pos, end)  # TBSCertificate
        tag, start, stop = read_tlv(der, pos, end)
        if tag == 0xA0:  # explicit version (absent in a v1 certificate)
            pos = stop
        for _ in range(4):  # serialNumber, signature, issuer, validity
            pos = read_tlv(der, pos, end)[2]
        _, pos, stop = read_tlv(der, pos, end)  # subject
        names = []
        while pos < stop:
            _, a, rdn_end = read_tlv(der, pos, stop)  # RelativeDistinguishedName (SET)
            while a < rdn_end:
                _, b, atv_end = read_tlv(der, a, rdn_end)  # AttributeTypeAndValue
                _, o0, o1 = read_tlv(der, b, atv_end)
                vtag, v0, v1 = read_tlv(der, o1, atv_end)
                oid = _oid(der[o0:o1])
                value = der[v0:v1].decode("utf-8", "replace") if vtag in _STRINGS else der[v0:v1].hex()
                names.append(f"{_ATTRIBUTES.get(oid, oid)}={value}")
                a = atv_end
            pos = rdn_end
        return ",".join(reversed(names)) or None  # RFC 4514 order, as cryptography prints it
    except (ValueError, IndexError):
        return None
