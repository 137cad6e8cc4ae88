"""Phone numbers in any country's format, through Google's libphonenumber (``phonenumbers``).

libphonenumber's own matcher parses against one default region, so a German number written the
German way (``030 901820``), a ``00``-prefixed international number or a number in a fictional
range (``555-0142``, what test data and docs use) slipped through a US-only pass. Here a
permissive regex proposes digit runs shaped like phone numbers, and a candidate is kept when:

* it starts with ``+`` or ``00`` and is a valid or possible number for the country it names;
* it is shaped like a phone number (parentheses, ``ddd-ddd-dddd``) and is valid in any of
  ``REGIONS`` or possible in the US (which admits the fictional ``555-01xx`` range);
* it is grouped the national way (``030 901 820``) and valid in any region, with 10+ digits
  or a phone word (``phone``, ``tel``, ``call``, ``mobile``, ``fax``, …) just before it;
* it is a bare digit run only with a phone word before it.

Dates, times, IP addresses, decimals, the tail of identifiers (``INV-2025-000123``) and numbers
after another id's word (``card``, ``licence``, ``order``, …) are rejected before any parsing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import phonenumbers

#: Regions a bare national-format number is tried against: the countries with the most
#: internet users plus those whose formats are common in English-language traffic.
REGIONS = ("US", "GB", "CA", "AU", "IN", "DE", "FR", "ES", "IT", "NL", "BE", "CH", "AT", "IE", "SE", "NO",
           "DK", "FI", "PL", "PT", "BR", "MX", "AR", "JP", "KR", "CN", "SG", "ZA", "NZ", "IL", "TR", "RU",
           "CY", "GR", "IS", "CZ", "HU", "SI", "HR", "AE", "PH", "NG")

_CANDIDATE = re.compile(
    r"(?<![\w+./-])(?<!\d,)(?:\+|00)?[ ]?(?:\(\d{1,5}\)[ .-]?)?\d(?:[\d \t.()/-]{3,20})\d"
    r"(?:[ ]?(?:x|ext\.?|extension)[ ]?\d{1,6})?(?![\w/]|[.,]\d|-\d|:\d)")
_PHONE_WORD = re.compile(r"(?i)(?:phone|tel(?:ephone)?|mobile|cell|call|fax|whats ?app|sms|text me|ring|desk|office|"
                         r"dial|contact|reach|answering|nummer|téléphone|teléfono|telefon[eo]?|handy|☎|📞)\W{0,12}"
                         r"(?:(?:me|us|at|on|is|no\.?|number|#)\W{0,3}){0,3}$")
#: Words before a number that make it some other id, not a phone number.
_OTHER_ID_WORD = re.compile(r"(?i)(?:licen[cs]e|passport|card|account|acct|order|invoice|ticket|iban|routing|ssn|"
                            r"social security|nhs|insurance|aadhaar|pesel|bsn|tfn|nino|tax|member|policy|claim|"
                            r"tracking|serial|sku|isbn|id)\b[^\n\d]{0,20}$")
_DATE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$")
_IDENTIFIER_TAIL = re.compile(r"[A-Za-z0-9][-_/#]$")
_EXTENSION = re.compile(r"[ ]?(?:x|ext\.?|extension)[ ]?\d{1,6}$")
_SHAPED = re.compile(r"^\(\d{1,5}\)|^\d{3}([-.])\d{3}\1\d{4}$|^\d{3}[-.]\d{4}$")


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _parse(value: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None


def _is_phone(value: str, cue: bool) -> bool:
    """The acceptance rules in the module docstring; the stricter the shape, the less is asked."""
    value = _EXTENSION.sub("", value)
    digits = _digits(value)
    if not 7 <= len(digits) <= 15 or _DATE.search(value) or value.count("(") != value.count(")"):
        return False
    if value.startswith(("+", "00")):
        number = _parse("+" + value[2:] if value.startswith("00") else value, "US")
        return number is not None and (phonenumbers.is_valid_number(number) or phonenumbers.is_possible_number(number))
    valid_somewhere = any(n is not None and phonenumbers.is_valid_number(n) for n in (_parse(value, r) for r in REGIONS))
    if _SHAPED.search(value):  # (030) 901820, 415-555-0142: fictional ranges are possible, not valid
        us = _parse(value, "US")
        return valid_somewhere or (us is not None and phonenumbers.is_possible_number(us))
    if digits == value:  # a bare digit run is an order number as often as a phone number
        return cue and valid_somewhere
    return valid_somewhere and (cue or len(digits) >= 10) or (cue and len(digits) >= 7)


def phones(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each phone number in ``text``."""
    for m in _CANDIDATE.finditer(text):
        value = m.group().strip()
        start = m.start() + (len(m.group()) - len(m.group().lstrip()))
        before = text[max(0, start - 30):start]
        if _IDENTIFIER_TAIL.search(before) or _OTHER_ID_WORD.search(before):
            continue
        if re.fullmatch(r"[\d.]+", value) and value.count(".") == 3:
            continue  # an IPv4 address
        if _is_phone(value, bool(_PHONE_WORD.search(before))):
            yield start, start + len(value)
