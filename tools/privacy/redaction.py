"""PII redaction for dataset records and for anything sent to a judge.

One ``Redactor`` serves one record: the same value maps to the same placeholder everywhere in it
(``<EMAIL_1>`` in the request and in the expected response), numbered per type in order of first
appearance (inputs, then outputs, then expectations; left to right). Once a value is found
anywhere in the record, **every other occurrence** of it is replaced too, even where no detector
would fire on its own (the password echoed under ``password_confirmation``, a name repeated in
a tool argument): ``Redactor.learn`` reads the whole record before anything is rewritten. The
original values are never stored or returned: reports carry counts by type only.

Entry points: ``redact_text(text)`` for one string, ``redact_record(record)`` for a dataset record
(``inputs`` / ``outputs`` / ``expectations``), ``Redactor`` to share numbering across calls.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pydantic import BaseModel, Field

from tools.privacy import name_cues, names as pii_names, national_ids, patterns
from tools.privacy.patterns import PLACEHOLDER, TYPES, Hit
from tools.privacy.secrets import keyed_secret

_RANK = {t: i for i, t in enumerate(TYPES)}
_INDEXED = re.compile(r"<(" + "|".join(TYPES) + r")_(\d+)>")
#: Record fields that are redacted, in numbering order. trace_id / strata are ids, not content.
RECORD_FIELDS = ("inputs", "outputs", "expectations")


class RedactionReport(BaseModel):
    """What redaction changed: counts by type, never the values."""

    enabled: bool = Field(description="False when the caller turned redaction off (redact=false).")
    counts: dict[str, int] = Field(default_factory=dict,
                                   description="Values replaced, by type (EMAIL, PHONE, CARD, SSN, IP, SECRET, "
                                               "PERSON). Repeats of one value in a record count once.")
    records_changed: int = Field(0, description="Records in which at least one value was replaced.")
    person_names: str = Field("", description="What detected person names, or why names were not redacted.")
    not_covered: list[str] = Field(default_factory=list,
                                   description="What this redaction could not catch, so a reader knows what to check.")

    def add(self, counts: dict[str, int]) -> None:
        for key, n in counts.items():
            self.counts[key] = self.counts.get(key, 0) + n
        self.counts = dict(sorted(self.counts.items()))
        if any(counts.values()):
            self.records_changed += 1


def detect(text: str, *, names: bool = True) -> list[Hit]:
    """Non-overlapping detections in ``text``, left to right.

    Overlaps are resolved by the longer span, then by type precedence (``TYPES``), so a card number
    is not also a phone number and an email's local part is not also a person.
    """
    if not text or text.isspace():
        return []
    protected = [(m.start(), m.end()) for m in PLACEHOLDER.finditer(text)]
    detectors: list[Callable[[str], Iterable[Hit]]] = list(patterns.PATTERN_DETECTORS)
    if names:
        detectors += [pii_names.names, name_cues.cued_names]
    hits = [h for d in detectors for h in d(text)
            if h.end > h.start and not any(h.start < e and s < h.end for s, e in protected)]
    return _non_overlapping(hits)


def _non_overlapping(hits: list[Hit]) -> list[Hit]:
    """The longest of overlapping hits (type precedence breaks ties), left to right."""
    hits = sorted(hits, key=lambda h: (-(h.end - h.start), _RANK[h.type], h.start))
    chosen: list[Hit] = []
    for hit in hits:
        if all(hit.end <= c.start or c.end <= hit.start for c in chosen):
            chosen.append(hit)
    return sorted(chosen, key=lambda h: h.start)


#: Found values shorter than this are not chased into other strings ("Al" would eat "Also").
MIN_ECHO_CHARS = 4
#: Types whose repeats are matched case-insensitively (an email or a name changes case in replies).
_CASELESS = {"EMAIL", "PERSON", "ADDRESS", "IBAN", "NATIONAL_ID"}


class Redactor:
    """Replace PII with numbered placeholders, consistently across every string it is given.

    ``existing`` is text already redacted earlier (for example a stored record that gains new
    expectations): numbering continues after the placeholders it contains instead of reusing them.
    Call ``learn`` on everything that belongs together before ``text``/``value`` so that a value
    found in one string is also replaced where it recurs in another; ``value`` learns its own
    argument first.
    """

    def __init__(self, *, names: bool = True, existing: Iterable[str] = ()) -> None:
        self.names = names
        self._tokens: dict[tuple[str, str], str] = {}
        self._next: Counter[str] = Counter()
        for text in existing:
            for m in _INDEXED.finditer(text):
                self._next[m.group(1)] = max(self._next[m.group(1)], int(m.group(2)))
        self.counts: Counter[str] = Counter()
        self._detected: dict[str, list[Hit]] = {}
        self._echo: dict[str, Hit] = {}  # surface form (casefolded where caseless) -> first hit
        self._echo_re: re.Pattern[str] | None = None

    def _token(self, hit: Hit) -> str:
        key = (hit.type, hit.key)
        if key not in self._tokens:
            self._next[hit.type] += 1
            self._tokens[key] = f"<{hit.type}_{self._next[hit.type]}>"
            self.counts[hit.type] += 1
        return self._tokens[key]

    def _detect(self, text: str) -> list[Hit]:
        if text not in self._detected:
            hits = detect(text, names=self.names)
            self._detected[text] = hits
            for hit in hits:
                value = hit.value.strip()
                if len(value) >= MIN_ECHO_CHARS:
                    form = value.casefold() if hit.type in _CASELESS else value
                    if form not in self._echo:
                        self._echo[form] = hit
                        self._echo_re = None
        return self._detected[text]

    def learn(self, value: Any) -> None:
        """Detect in every string of ``value`` now, so later rewrites also replace their repeats.

        A string under a credential's key (``{"password_confirmation": "…"}``) is a secret as a
        whole: the key is the context a detector inside the string cannot see.
        """
        for key, text in _keyed_strings(value):
            self._detect(text)
            if key is not None and keyed_secret(key, text) and not PLACEHOLDER.search(text):
                form = text.strip()
                if form not in self._echo:
                    self._echo[form] = Hit("SECRET", 0, len(form), form)
                    self._echo_re = None

    def _echoes(self, text: str) -> list[Hit]:
        """Occurrences in ``text`` of values found anywhere before, as hits of the original type."""
        if not self._echo:
            return []
        if self._echo_re is None:
            forms = sorted(self._echo, key=len, reverse=True)
            self._echo_re = re.compile(r"(?<![A-Za-z0-9])(?:" + "|".join(re.escape(f) for f in forms)
                                       + r")(?![A-Za-z0-9])", re.IGNORECASE)
        out = []
        for m in self._echo_re.finditer(text):
            hit = self._echo.get(m.group()) or self._echo.get(m.group().casefold())
            if hit is not None and (hit.type in _CASELESS or m.group() == hit.value.strip()):
                out.append(Hit(hit.type, m.start(), m.end(), hit.value))
        return out

    def text(self, text: str) -> str:
        hits = _non_overlapping(self._detect(text) + self._echoes(text))
        out, last = [], 0
        for hit in hits:
            out.append(text[last:hit.start])
            out.append(self._token(hit))
            last = hit.end
        out.append(text[last:])
        return "".join(out)

    def value(self, value: Any) -> Any:
        """Redact every string (and long integer) inside a JSON value; keys and structure stay."""
        self.learn(value)
        return self._rewrite(value)

    def _rewrite(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bool) or value is None or isinstance(value, float):
            return value
        if isinstance(value, int):
            if abs(value) >= 10**8:  # card, SSN or phone numbers sometimes arrive as JSON numbers
                redacted = self.text(str(value))
                return value if redacted == str(value) else redacted
            return value
        if isinstance(value, dict):
            return {k: self._rewrite(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._rewrite(v) for v in value]
        return value


class RedactedText(BaseModel):
    text: str
    counts: dict[str, int] = Field(description="Distinct values replaced, by type.")


def redact_text(text: str, *, names: bool = True) -> RedactedText:
    """Redact one string with its own numbering (``<EMAIL_1>`` is the first email in it)."""
    redactor = Redactor(names=names)
    return RedactedText(text=redactor.text(text), counts=dict(sorted(redactor.counts.items())))


def _keyed_strings(value: Any, key: str | None = None) -> Iterator[tuple[str | None, str]]:
    """Every string in a JSON value with the dict key it sits under (None in lists and at the top)."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _keyed_strings(v, str(k))
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _keyed_strings(v, key if isinstance(v, str) else None)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def redact_record(record: dict[str, Any], *, names: bool = True,
                  fields: tuple[str, ...] = RECORD_FIELDS,
                  already_redacted: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, int]]:
    """A copy of ``record`` with ``fields`` redacted under one numbering, and the counts by type.

    ``already_redacted`` holds the stored (redacted) fields of the same record, so placeholders
    for newly added values continue the numbering rather than colliding with existing ones.
    """
    existing = [s for f in RECORD_FIELDS for s in _strings((already_redacted or {}).get(f))]
    redactor = Redactor(names=names, existing=existing)
    out = dict(record)
    for field in fields:
        redactor.learn(out.get(field))
    for field in fields:
        if field in out:
            out[field] = redactor.value(out[field])
    return out, dict(sorted(redactor.counts.items()))


def prime(values: Iterable[Any]) -> None:
    """Warm the name recogniser on every string in ``values`` in one batch (a speed-up only)."""
    pii_names.prime(s for v in values for s in _strings(v))


def names_description() -> str:
    return pii_names.description()


def not_covered() -> list[str]:
    """What no detector in this process catches (shown in every redaction report)."""
    gaps = ["address parts on their own (a bare house number, postcode or city with no street)",
            "free-text secrets with no key name, prefix or assignment (a bare password in a sentence)",
            "names the NER model and cue phrases both miss (about 3 in 10 on the public corpus)"]
    if not pii_names.available():
        gaps.insert(0, "person names: " + pii_names.description())
    if not national_ids.description().startswith("Presidio"):
        gaps.insert(0, "national ids and IBANs: " + national_ids.description())
    return gaps
