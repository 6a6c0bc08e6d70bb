"""Reading certificate and CRL files whole, or not at all.

A file caught half-written (a sync or an editor mid-copy, a full disk) must be refused, never read
as the blocks before the cut: a trust-anchor bundle cut in its second root would otherwise lose
that root without a word, and every call signed under it would get 437. So a PEM file is read line
by line and refused when a block has no END line, when a line outside the blocks begins with '-'
(what a cut leaves of a boundary line), when a block of another kind sits among the expected ones
(a root the X.509 parser would never see), or when a block is not base64 of exactly one DER
element. Text between blocks (the subject lines of openssl and CA bundles) is allowed. A DER file
must be exactly one DER element.

Whether a well-framed element is a certificate the X.509 parser accepts is not decided here.
"""
from __future__ import annotations

import base64
import binascii
import re
from typing import List

from ._der import read_tlv

_LABEL = rb"[\x21-\x2c\x2e-\x7e]+(?:[- ][\x21-\x2c\x2e-\x7e]+)*"  # RFC 7468 section 3
_BOUNDARY = re.compile(rb"-----(BEGIN|END) (" + _LABEL + rb")-----")


def ders(data: bytes, label: str, noun: str) -> List[bytes]:
    """The DER of each `label` item of PEM (one block or many) or DER `data`: trust anchors, CRL
    signers, chains and CRLs are all read this way. ValueError when there is none ("no {noun}
    found") or the data cannot be read whole."""
    out = [der_whole(data)] if is_der(data) else blocks(data, label)
    if not out:
        raise ValueError(f"no {noun} found")
    return out


def is_der(data: bytes) -> bool:
    """Whether `data` is to be read as DER: it starts with a SEQUENCE tag and names no PEM block."""
    return data[:1] == b"\x30" and b"-----BEGIN" not in data


def der_whole(der: bytes) -> bytes:
    """`der` when it is exactly one DER element; ValueError saying what is wrong otherwise."""
    if not der:
        raise ValueError("empty")
    try:
        _, _, end = read_tlv(der, 0, len(der))
    except ValueError as e:
        raise ValueError(f"the DER data is cut short or damaged ({e})") from None
    if end != len(der):
        raise ValueError(f"{len(der) - end} bytes follow the DER element")
    return der


def blocks(data: bytes, label: str) -> List[bytes]:
    """The DER of each `label` block of PEM `data` (e.g. "CERTIFICATE", "X509 CRL"), in order;
    ValueError naming the line when the data cannot be read whole. An empty list when there is
    no block and nothing that looks like one."""
    want = label.encode("ascii")
    out: List[bytes] = []
    start = 0  # line of the open block's BEGIN, 0 when outside a block
    body: List[bytes] = []
    for number, line in enumerate(data.splitlines(), 1):
        line = line.strip()
        boundary = _BOUNDARY.fullmatch(line)
        if not start:
            if boundary is not None and boundary[1] == b"BEGIN":
                if boundary[2] != want:
                    raise ValueError(f"line {number}: a {boundary[2].decode()} block where {label} blocks are expected")
                start, body = number, []
            elif line.startswith(b"-"):
                raise ValueError(f"line {number} outside a {label} block looks like a cut PEM boundary: "
                                 f"{line[:40].decode('ascii', 'replace')!r}")
            continue
        if boundary is not None and boundary[1] == b"END" and boundary[2] == want:
            try:
                der = base64.b64decode(b"".join(body), validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(f"the {label} block of line {start} is not base64") from None
            try:
                out.append(der_whole(der))
            except ValueError as e:
                raise ValueError(f"the {label} block of line {start}: {e}") from None
            start = 0
        elif line.startswith(b"-"):
            raise ValueError(f"line {number}, inside the {label} block of line {start}, is not its END line: "
                             f"{line[:40].decode('ascii', 'replace')!r}")
        else:
            body.append(line)
    if start:
        raise ValueError(f"the {label} block of line {start} has no END line: the file is truncated")
    return out
