"""Person names that the words around them give away, for what a small NER model misses.

spaCy's small English model finds about two thirds of the names in the public corpus; it misses
names in lower case, rare (non-English) names and names in forms. Two cheap, general signals
recover part of that:

* **cues**: a name right after "my name is", "I'm", "Name:", "Dear", "Mr./Mrs./Dr.",
  "Directed by", "maiden name is", "signed", …;
* **coordination**: in "Marrero and Murphy" or "Isabel, Teresa and Jodi", when the model found one
  member of the list, the others are names of the same kind.

Measured by ``bench/pii_bench.py`` (BENCHMARKS.md); both only run when name detection is on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from tools.privacy.patterns import Hit

_NAME_WORD = r"[^\W\d_][^\W\d_'’.-]*(?:['’-][^\W\d_]+)*\.?"
_NAME = rf"{_NAME_WORD}(?:[ \t]+{_NAME_WORD}){{0,3}}"
_CUE = re.compile(
    rf"(?i:\bmy (?:full |first |last |maiden )?name(?:'s| is)|\bi am called|\bcall me|\bname[ \t]*:|\bnamed"
    rf"|\blast name\?|\bfirst name\?|\bdear|\bmr\.?|\bmrs\.?|\bms\.?|\bmiss|\bdr\.?|\bprof\.?"
    rf"|\bdirected by[ \t]*:?|\bwritten by[ \t]*:?|\bsigned[ \t]*:?|\bsincerely,?|\bregards,?|\bcontact person[ \t]*:?"
    rf"|\bmaiden name is|\bwas called|\bassistant to)[ \t]+({_NAME})")
#: Words that end a cued name: what follows a name in a sentence, not part of it.
_STOP = re.compile(r"(?i)^(?:and|or|but|is|was|the|a|an|of|from|to|in|at|on|with|for|i|i'm|my|your|his|her|their"
                   r"|has|had|have|who|which|that|said|says|here|there|please|thanks|thank|version"
                   r"|suite|apt|apartment|unit|flat|box|street|road|avenue|lane)$")
_LIST_SEP = re.compile(r"(?:,[ \t]*(?:and[ \t]+|&[ \t]*)?|[ \t]+(?:and|&)[ \t]+)")


def _trim(name: str, lowercase_text: bool) -> str:
    """The leading words of ``name`` that can be part of a name (capitalised unless the text is lower case)."""
    kept = []
    for word in name.split():
        if _STOP.match(word.rstrip(".")) or not (lowercase_text or word[0].isupper()):
            break
        kept.append(word)
    return " ".join(kept).rstrip(".")


def cued_names(text: str) -> Iterator[Hit]:
    """Names right after a cue ("my name is Akinori", "Directed By: Leena O Sasi")."""
    lowercase_text = not any(c.isupper() for c in text)
    for m in _CUE.finditer(text):
        name = _trim(m.group(1), lowercase_text)
        if len(name) >= 2:
            yield Hit("PERSON", m.start(1), m.start(1) + len(name), name)


def coordinated(text: str, found: Iterable[Hit]) -> Iterator[Hit]:
    """Siblings of a found one-word name in a list joined by commas and "and" ("Isabel, Teresa and Jodi")."""
    lowercase_text = not any(c.isupper() for c in text)
    word = re.compile(rf"{_NAME_WORD}")
    for hit in found:
        if " " in hit.value:
            continue
        position = hit.start
        while True:  # walk left over "X, " / "X and "
            sep = re.search(rf"({_NAME_WORD}){_LIST_SEP.pattern}$", text[max(0, position - 40):position])
            if not sep or _STOP.match(sep.group(1)) or not (lowercase_text or sep.group(1)[0].isupper()):
                break
            start = position - len(sep.group(0))
            yield Hit("PERSON", start, start + len(sep.group(1)), sep.group(1))
            position = start
        position = hit.end
        while True:  # walk right
            sep = _LIST_SEP.match(text, position)
            nxt = word.match(text, sep.end()) if sep else None
            if not nxt or _STOP.match(nxt.group().rstrip(".")) or not (lowercase_text or nxt.group()[0].isupper()):
                break
            value = nxt.group().rstrip(".")
            yield Hit("PERSON", nxt.start(), nxt.start() + len(value), value)
            position = nxt.start() + len(value)
