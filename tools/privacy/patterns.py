"""PII detectors, each returning character spans; the library-backed ones live beside this module.

Precision matters as much as recall here: a redactor that eats order numbers, dates and version
strings ruins the eval records it is meant to protect. So every detector pairs a pattern with a
check a regex alone cannot do:

* payment cards: brand prefix and length (IIN ranges) **and** the Luhn checksum;
* IP addresses: ``ipaddress`` validation, and not after ``v``/``version`` (software versions);
* US SSNs: dashed/spaced form with the SSA's never-issued areas excluded, or 9 bare digits only
  right after an "SSN" cue;
* emails: ASCII boundaries, so an address glued to CJK text is still found;
* secrets (``secrets``: gitleaks' rules plus assignments), phones (``phones``: libphonenumber
  across regions), national ids and IBANs (``national_ids``: Presidio's recognizers and
  checksums), street addresses (``addresses``: pyap), person names (``names``: spaCy NER).

Measured against Presidio's defaults on a public corpus by ``bench/pii_bench.py``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass

from tools.privacy.addresses import addresses as address_spans
from tools.privacy.national_ids import national_ids as id_spans
from tools.privacy.phones import phones as phone_spans
from tools.privacy.secrets import secrets as secret_spans

#: Entity types in placeholder order of precedence when two detections overlap (lower wins ties).
TYPES: tuple[str, ...] = ("SECRET", "EMAIL", "CARD", "IBAN", "SSN", "NATIONAL_ID", "IP", "PHONE", "ADDRESS", "PERSON")

#: Placeholders this module writes; text that already contains them is never re-detected.
PLACEHOLDER = re.compile(r"<(?:" + "|".join(TYPES) + r")_\d+>")


@dataclass(frozen=True)
class Hit:
    """One detected value: ``text[start:end]`` is the sensitive part (prefix words are kept)."""

    type: str
    start: int
    end: int
    value: str

    @property
    def key(self) -> str:
        """A normalised form so the same value maps to the same placeholder within a record."""
        if self.type in ("CARD", "SSN", "PHONE"):
            return re.sub(r"\D", "", self.value)
        if self.type in ("IBAN", "NATIONAL_ID"):
            return re.sub(r"[\W_]", "", self.value).upper()
        if self.type in ("EMAIL", "PERSON", "IP", "ADDRESS"):
            return " ".join(self.value.casefold().split())
        return self.value


# -- emails ---------------------------------------------------------------------------------------
#: ASCII-only boundaries: ``\w`` would treat CJK text glued to an address ("请联系bob@example.com") as
#: part of the local part and miss the address.
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9.+%'_-])[A-Za-z0-9](?:[A-Za-z0-9._%+'-]{0,63})@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9_-])")


def emails(text: str) -> Iterator[Hit]:
    for m in _EMAIL.finditer(text):
        yield Hit("EMAIL", m.start(), m.end(), m.group())


# -- payment cards ---------------------------------------------------------------------------------
_CARD = re.compile(r"(?<![\d.,/-])(?:\d[ -]?){11,18}\d(?![\d/]|[.,-]\d)")


def luhn_ok(digits: str) -> bool:
    """The Luhn mod-10 checksum every payment card number satisfies."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_brand(digits: str) -> str | None:
    """The issuer by IIN prefix and length, or None when no major brand issues such numbers."""
    n = len(digits)
    two, four, six = int(digits[:2]), int(digits[:4]), int(digits[:6])
    if digits[0] == "4" and n in (13, 16, 19):
        return "visa"
    if (51 <= two <= 55 or 2221 <= four <= 2720) and n == 16:
        return "mastercard"
    if two in (34, 37) and n == 15:
        return "amex"
    if (four == 6011 or 644 <= int(digits[:3]) <= 649 or two == 65 or 622126 <= six <= 622925) and 16 <= n <= 19:
        return "discover"
    if 3528 <= four <= 3589 and 16 <= n <= 19:
        return "jcb"
    if (300 <= int(digits[:3]) <= 305 or two in (36, 38)) and n == 14:
        return "diners"
    if two == 62 and 16 <= n <= 19:
        return "unionpay"
    if (four in (5018, 5020, 5038, 5893, 6304, 6759, 6761, 6762, 6763) or six in (676770, 676774)) and 12 <= n <= 19:
        return "maestro"
    if four in (2131, 1800) and n == 15:
        return "jcb"
    return None


def cards(text: str) -> Iterator[Hit]:
    for m in _CARD.finditer(text):
        raw = m.group()
        digits = re.sub(r"\D", "", raw)
        if 12 <= len(digits) <= 19 and card_brand(digits) and luhn_ok(digits):
            yield Hit("CARD", m.start(), m.end(), raw)


# -- US social security numbers -------------------------------------------------------------------
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])")
_SSN_CUE = re.compile(r"(?i)\b(?:ssn|social security(?: number| no\.?)?|ss#)\W{0,5}(?:is\s+|:\s*|#\s*)?"
                      r"(?<!\d)((?!000|666|9\d\d)\d{3}(?!00)\d{2}(?!0000)\d{4})(?!\d)")


def ssns(text: str) -> Iterator[Hit]:
    for m in _SSN.finditer(text):
        yield Hit("SSN", m.start(), m.end(), m.group())
    for m in _SSN_CUE.finditer(text):
        yield Hit("SSN", m.start(1), m.end(1), m.group(1))


# -- IP addresses -----------------------------------------------------------------------------------
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])")
_VERSION_CUE = re.compile(r"(?i)(?:\bv|\bver\.?|\bversion|\brelease|\bbuild|\bsection|\bchapter|\bclause|\bstep"
                          r"|\bpart|§)\s*$")


def ips(text: str) -> Iterator[Hit]:
    for m in _IPV4.finditer(text):
        if _VERSION_CUE.search(text[max(0, m.start() - 12):m.start()]):
            continue
        try:
            ipaddress.IPv4Address(m.group())
        except ValueError:
            continue
        yield Hit("IP", m.start(), m.end(), m.group())
    for m in _IPV6.finditer(text):
        candidate = m.group()
        if candidate.count(":") < 2 or len(candidate) < 3 or re.fullmatch(r"[\d:]+", candidate) and "::" not in candidate:
            continue
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        yield Hit("IP", m.start(), m.end(), candidate)


# -- wrappers for the library-backed detectors ------------------------------------------------------


def secrets(text: str) -> Iterator[Hit]:
    for start, end in secret_spans(text):
        yield Hit("SECRET", start, end, text[start:end])


def phones(text: str) -> Iterator[Hit]:
    for start, end in phone_spans(text):
        yield Hit("PHONE", start, end, text[start:end])


def addresses(text: str) -> Iterator[Hit]:
    for start, end in address_spans(text):
        yield Hit("ADDRESS", start, end, text[start:end])


def national_ids(text: str) -> Iterator[Hit]:
    for kind, start, end in id_spans(text):
        yield Hit(kind, start, end, text[start:end])


PATTERN_DETECTORS = (secrets, emails, cards, ssns, national_ids, ips, phones, addresses)
