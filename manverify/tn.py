"""Telephone numbers: canonical form per RFC 8224 §8.3 and the French numbering plan.

Canonical = E.164 digits without '+': "0612345678", "+33 6 12 34 56 78", "0033612345678",
"tel:+33-6-12-34-56-78" and "sip:+33612345678@host;user=phone" all become "33612345678".
French overseas departments dial as national numbers but carry their own country codes
(0590 12 34 56 → 590590123456).

A canonical number is its own canonical form (canonical(canonical(x)) == canonical(x)), so a
number canonicalised twice — by sip.check and again by verify() — is still the same number:
  - after an international mark ('+', the '00' prefix, a '+' phone-context) come E.164 digits,
    whose country code never starts with 0: "+0612345678" is no number, not a national one;
  - a national number ("0X" and 8 digits) is national whatever domain names its phone-context
    (RFC 3966 §5.1.5; IMS uses the home network's domain): left as dialled, it would read as
    national the next time.
"""
from __future__ import annotations

import re
from typing import Optional

from .errors import InvalidNumber

MAX_DIGITS = 15

# National prefixes (after the trunk 0) of overseas departments and the country code they map to.
_OVERSEAS = {
    "590": "590", "690": "590", "691": "590",  # Guadeloupe, Saint-Barthélemy, Saint-Martin
    "594": "594", "694": "594",  # Guyane
    "596": "596", "696": "596", "697": "596",  # Martinique
    "262": "262", "263": "262", "692": "262", "693": "262",  # La Réunion
    "269": "262", "639": "262",  # Mayotte
}

_SEPARATORS = re.compile(r"[\s\-.()/\[\]]")
_DIALABLE = re.compile(r"[#*]?[0-9]+[0-9#*]*\Z")
_INTERNATIONAL = re.compile(r"[1-9][0-9]*\Z")  # E.164 digits: a country code never starts with 0
# "<sip:+digits@host...>" (anything after the '>', e.g. ;tag=) and a bare "sip:+digits@host..."
# with no '<' or '"' in it: a strict subset of what _read_general reads the same way
# (tests/test_tn.py holds it to that).
_SIP_GLOBAL = re.compile(r'[ \t]*(?:<sips?:\+([1-9][0-9]*)@[^>]*>|sips?:\+([1-9][0-9]*)@[^<"]*\Z)', re.IGNORECASE)
_NAME_ADDR = re.compile(r'^\s*(?:"(?:[^"\\]|\\.)*"\s*|[^<"]*)<([^>]*)>')


def _user_part(text: str) -> tuple[str, Optional[str]]:
    """Strip display name, brackets, scheme, host and parameters; return (number, phone-context)."""
    m = _NAME_ADDR.match(text)
    if m:
        text = m.group(1)
    text = text.strip()
    low = text[:5].lower()
    context = None
    if low.startswith(("sip:", "sips:", "tel:")):
        is_tel = low.startswith("tel:")
        text = text.split(":", 1)[1]
        if not is_tel:
            text = text.split("@", 1)[0]
        text, _, params = text.partition(";")
        for p in params.split(";"):
            name, _, value = p.partition("=")
            if name.strip().lower() == "phone-context":
                context = value.strip()
    return text, context


def canonical(number: str, *, max_digits: int = MAX_DIGITS, country: str = "33") -> str:
    """Canonical E.164 digits of `number`, or InvalidNumber.

    `country` is the country whose national format ("0X…") is assumed for numbers without an
    international prefix; MAN is French, so 33.
    """
    if not isinstance(number, str):
        raise InvalidNumber(f"a telephone number must be a str, not {type(number).__name__}")
    # Fast paths: already canonical ("33612345678"), "+33612345678", national "0612345678".
    if number.isdigit() and number.isascii():
        if number[0] != "0" and len(number) <= max_digits:
            return number
        if len(number) == 10 and number[1] != "0":
            return _from_national(number, country)
    elif number[:1] == "+" and number[1:].isdigit() and number.isascii():
        if 0 < len(number) - 1 <= max_digits and number[1] != "0":
            return number[1:]
    if len(number) > 256:
        raise InvalidNumber("telephone number is longer than 256 characters")
    m = _SIP_GLOBAL.match(number)  # what proxies pass most, without the general URI parser
    if m:
        digits = m.group(1) or m.group(2)
        if len(digits) <= max_digits:
            return digits
    return _read_general(number, max_digits, country)


def _read_general(number: str, max_digits: int, country: str) -> str:
    """canonical() for everything its fast paths do not take."""
    text, context = _user_part(number)
    text = _SEPARATORS.sub("", text)
    global_context = context is not None and context.startswith("+")
    if text.startswith("+"):
        digits = _international(text[1:], number)
    elif text.startswith("00") and len(text) > 4:
        digits = _international(text[2:], number)
    elif text.startswith("0") and len(text) == 10 and text.isdigit() and (
        not global_context or context[1:] == country
    ):
        digits = _from_national(text, country)
    elif global_context:
        cc = _international(_SEPARATORS.sub("", context[1:]), number)
        digits = _from_national(text, cc) if text.startswith("0") and cc == country else cc + text
    else:
        digits = text
    if not _DIALABLE.match(digits):
        raise InvalidNumber(f"not a telephone number: {number[:64]!r}")
    if len(digits) > max_digits:
        raise InvalidNumber(f"telephone number has more than {max_digits} digits: {number[:64]!r}")
    return digits


def _international(digits: str, number: str) -> str:
    if not _INTERNATIONAL.match(digits):
        raise InvalidNumber(f"not an international number (E.164 digits, no leading 0): {number[:64]!r}")
    return digits


def _from_national(national: str, country: str) -> str:
    if country == "33":
        cc = _OVERSEAS.get(national[1:4])
        if cc is not None:
            return cc + national[1:]
    return country + national[1:]


def try_canonical(number, max_digits: int = MAX_DIGITS) -> Optional[str]:
    """canonical(), or None when the number is not canonicalisable (for the per-call path)."""
    try:
        return canonical(number, max_digits=max_digits)
    except InvalidNumber:
        return None


# French number-portability routing: +33 + a 5-digit routing prefix + the 9-digit number.
_ROUTED = re.compile(r"33[0-9]{5}([0-9]{9})\Z")


def same_destination(called: str, signed: str) -> bool:
    """Whether the called number (canonical) is the signed destination, allowing a French
    number-portability routing prefix in front of the called number."""
    if called == signed:
        return True
    m = _ROUTED.match(called)
    return bool(m) and signed == "33" + m.group(1)
