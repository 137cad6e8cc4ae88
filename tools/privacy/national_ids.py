"""National ids, IBANs and US SSNs through Microsoft Presidio's country recognizers.

Presidio ships one ``PatternRecognizer`` per id (UK NHS and NINO, Spanish NIF/NIE, Italian
fiscal code, Indian Aadhaar, Polish PESEL, …), most with the id's checksum as a validator: a
number that passes it scores 1.0, one that fails is dropped. They are run here directly, not
through ``AnalyzerEngine``: the engine would run a spaCy pipeline per string only to find the
context words, which costs more than every pattern together. Context is applied the simple
way instead: a recognizer's own context words (``"nhs"``, ``"passport"``, …) within the 48
characters before a match raise its score by 0.35, Presidio's default boost.

A result is kept at score >= 0.5: a passed checksum, a strong pattern, or a weak pattern with
context. Presidio is an optional dependency (the ``names`` extra, with spaCy); without it these
ids are not detected and ``description()`` says so in every redaction report.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from collections.abc import Iterator
from typing import Any

#: Presidio recognizer class -> our type. Chosen for personal ids with a checksum or a strong
#: pattern; weak-pattern ids (passports, bank numbers) need their context words.
RECOGNIZERS = {
    "UsSsnRecognizer": "SSN", "UsItinRecognizer": "NATIONAL_ID", "UsLicenseRecognizer": "NATIONAL_ID",
    "UsPassportRecognizer": "NATIONAL_ID", "IbanRecognizer": "IBAN",
    "NhsRecognizer": "NATIONAL_ID", "UkNinoRecognizer": "NATIONAL_ID", "UkPassportRecognizer": "NATIONAL_ID",
    "EsNifRecognizer": "NATIONAL_ID", "EsNieRecognizer": "NATIONAL_ID", "ItFiscalCodeRecognizer": "NATIONAL_ID",
    "FiPersonalIdentityCodeRecognizer": "NATIONAL_ID", "PlPeselRecognizer": "NATIONAL_ID",
    "SePersonnummerRecognizer": "NATIONAL_ID", "KrRrnRecognizer": "NATIONAL_ID", "ThTninRecognizer": "NATIONAL_ID",
    "TrNationalIdRecognizer": "NATIONAL_ID", "InAadhaarRecognizer": "NATIONAL_ID", "InPanRecognizer": "NATIONAL_ID",
    "AuTfnRecognizer": "NATIONAL_ID", "AuMedicareRecognizer": "NATIONAL_ID", "DeTaxIdRecognizer": "NATIONAL_ID",
    "ZaIdNumberRecognizer": "NATIONAL_ID", "SgFinRecognizer": "NATIONAL_ID", "CaSinRecognizer": "NATIONAL_ID",
}
MIN_SCORE, CONTEXT_BOOST, CONTEXT_CHARS = 0.5, 0.35, 48
#: The flags AnalyzerEngine passes to every pattern (a lower-case IBAN is still an IBAN).
_ENGINE_FLAGS = re.DOTALL | re.MULTILINE | re.IGNORECASE
#: Bare digit runs whose checksum one random number in ten passes (Luhn, mod 11): a phone number or
#: an order id would pass too often, so these need one of the recognizer's context words.
CONTEXT_REQUIRED = {"NhsRecognizer", "AuTfnRecognizer", "AuMedicareRecognizer", "CaSinRecognizer", "InAadhaarRecognizer",
                    "ZaIdNumberRecognizer", "UsPassportRecognizer", "UsLicenseRecognizer", "UkPassportRecognizer",
                    "UsItinRecognizer"}

_lock = threading.Lock()
_state: dict[str, Any] = {}


def _load() -> list[tuple[Any, str, bool]]:
    with _lock:
        if "recognizers" not in _state:
            if importlib.util.find_spec("presidio_analyzer") is None:
                _state["recognizers"] = []
                _state["description"] = ("unavailable: presidio-analyzer is not installed; national ids and IBANs "
                                         "were NOT redacted (US SSNs still are)")
            else:
                from importlib.metadata import version  # noqa: PLC0415

                from presidio_analyzer import predefined_recognizers  # noqa: PLC0415 - optional, heavy

                _state["recognizers"] = [(getattr(predefined_recognizers, name)(), kind, name in CONTEXT_REQUIRED)
                                         for name, kind in RECOGNIZERS.items()]
                _state["description"] = f"Presidio {version('presidio-analyzer')}: {len(RECOGNIZERS)} id recognizers with checksums"
        return list(_state["recognizers"])


def description() -> str:
    _load()
    return str(_state["description"])


def national_ids(text: str) -> Iterator[tuple[str, int, int]]:
    """``(type, start, end)`` for each id a Presidio recognizer finds and keeps at ``MIN_SCORE``."""
    if not any(c.isdigit() for c in text):
        return
    lowered, upper = text.lower(), text.upper()
    for recognizer, kind, needs_context in _load():
        # IBANs are case-insensitive but Presidio's pattern is upper-case: read an upper-cased copy
        # (only when upper-casing keeps every offset, e.g. no "ß" -> "SS").
        source = upper if kind == "IBAN" and len(upper) == len(text) else text
        for result in recognizer.analyze(source, recognizer.supported_entities, regex_flags=_ENGINE_FLAGS):
            before = lowered[max(0, result.start - CONTEXT_CHARS):result.start]
            context = any(word.lower() in before for word in recognizer.context or ())
            score = result.score + (CONTEXT_BOOST if context and result.score < MIN_SCORE else 0.0)
            if score >= MIN_SCORE and (context or not needs_context):
                yield kind, result.start, result.end
