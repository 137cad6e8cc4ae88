"""PII detectors: precise patterns plus validators, each returning character spans.

Precision matters as much as recall here: a redactor that eats order numbers, dates and version
strings ruins the eval records it is meant to protect. So every pattern is paired with a check
that a regex alone cannot do:

* payment cards: brand prefix and length (IIN ranges) **and** the Luhn checksum;
* phone numbers: Google's libphonenumber (``phonenumbers``), which knows numbering plans, rather
  than a digit-run regex (it rejects dates, amounts and most order ids);
* IP addresses: ``ipaddress`` validation, and not after ``v``/``version`` (software versions);
* US SSNs: dashed/spaced form with the SSA's never-issued areas excluded, or 9 bare digits only
  right after an "SSN" cue;
* secrets: vendor key prefixes, JWTs, PEM private keys, ``Bearer`` tokens, and ``key=value`` /
  ``"password": "…"`` assignments whose value looks like a credential (mixed character classes).

Measured on ``tests/data/pii_corpus.jsonl`` by ``tests/test_redaction.py``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass

import phonenumbers

#: Entity types in placeholder order of precedence when two detections overlap (lower wins ties).
TYPES: tuple[str, ...] = ("SECRET", "EMAIL", "CARD", "SSN", "IP", "PHONE", "PERSON")

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
        if self.type in ("EMAIL", "PERSON", "IP"):
            return " ".join(self.value.casefold().split())
        return self.value


# -- emails ---------------------------------------------------------------------------------------
_EMAIL = re.compile(
    r"(?<![\w.+%'-])[A-Za-z0-9](?:[A-Za-z0-9._%+'-]{0,63})@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])")


def emails(text: str) -> Iterator[Hit]:
    for m in _EMAIL.finditer(text):
        yield Hit("EMAIL", m.start(), m.end(), m.group())


# -- secrets --------------------------------------------------------------------------------------
_PEM = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
_VENDOR = re.compile(
    r"(?<![A-Za-z0-9_-])(?:"
    r"sk-(?:proj-|ant-(?:api\d\d-)?|live-|svcacct-)?[A-Za-z0-9_-]{20,}"
    r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|AIza[0-9A-Za-z_-]{35}"
    r"|glpat-[A-Za-z0-9_-]{20,}"
    r"|hf_[A-Za-z0-9]{30,}"
    r"|npm_[A-Za-z0-9]{36}"
    r"|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"
    r")(?![A-Za-z0-9_-])")
_BEARER = re.compile(r"(?i)\b(?:bearer|token)\s+([A-Za-z0-9._~+/-]{16,}=*)")
_ASSIGNED = re.compile(
    r"(?i)(?<![A-Za-z0-9])[\"']?(?:api[_-]?key|apikey|x-api-key|secret(?:[_-]?key)?|client[_-]?secret"
    r"|access[_-]?token|auth[_-]?token|refresh[_-]?token|id[_-]?token|session[_-]?token|password|passwd|pwd"
    r"|passphrase|private[_-]?key|token)[\"']?\s*[:=]\s*[\"']?([^\s\"',;}<>]{6,})")


def _looks_like_credential(value: str) -> bool:
    """At least two character classes (lower, upper, digit, symbol): 'expired' is not a password."""
    classes = sum((any(c.islower() for c in value), any(c.isupper() for c in value),
                   any(c.isdigit() for c in value), any(not c.isalnum() for c in value)))
    return classes >= 2 and not PLACEHOLDER.fullmatch(value)


def secrets(text: str) -> Iterator[Hit]:
    for pattern in (_PEM, _JWT, _VENDOR):
        for m in pattern.finditer(text):
            yield Hit("SECRET", m.start(), m.end(), m.group())
    for pattern in (_BEARER, _ASSIGNED):
        for m in pattern.finditer(text):
            if _looks_like_credential(m.group(1)):
                yield Hit("SECRET", m.start(1), m.end(1), m.group(1))


# -- payment cards ---------------------------------------------------------------------------------
_CARD = re.compile(r"(?<![\d.,/-])(?:\d[ -]?){12,18}\d(?![\d/]|[.,-]\d)")


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
    return None


def cards(text: str) -> Iterator[Hit]:
    for m in _CARD.finditer(text):
        raw = m.group()
        digits = re.sub(r"\D", "", raw)
        if 13 <= len(digits) <= 19 and card_brand(digits) and luhn_ok(digits):
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


# -- phone numbers -----------------------------------------------------------------------------------
_DIGITS7 = re.compile(r"(?:\d\D?){7}")


def phones(text: str, region: str = "US") -> Iterator[Hit]:
    """libphonenumber's matcher at VALID leniency: numbers valid in the numbering plan only."""
    if not _DIGITS7.search(text):
        return
    for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
        if match.start >= 2 and text[match.start - 1] in "-_/#" and text[match.start - 2].isalnum():
            continue  # the tail of an identifier such as INV-2025-000123, not a phone number
        yield Hit("PHONE", match.start, match.end, match.raw_string)


PATTERN_DETECTORS = (secrets, emails, cards, ssns, ips, phones)
