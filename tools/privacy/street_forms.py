"""Street addresses in the world's common written forms, for what pyap's US/CA/UK grammar misses.

pyap finds 6 % of the addresses in the public corpus (most are European, Latin American or Asian
formats), so this recogniser adds the shapes a postal address takes in most countries, built
from street-type vocabularies rather than a list of places:

* ``<number> <words> <street type>``: ``1317 Kimberly Way``, ``14 Crown Street`` (USPS
  Publication 28 street suffixes plus common British ones);
* ``<words><street suffix> <number>``: ``Friedhofstrasse 33``, ``Præstevænget 15``,
  ``hegyalja út 98`` (German, Nordic, Dutch, Finnish, Hungarian, Slavic street words);
* ``<street prefix> <words> <number>``: ``Via Roma 131``, ``Rua Diadema 1903``, ``ul. Słowicza 10``;
* units (``Apt. 631``, ``Suite 464``) and US military addresses (``PSC 2721, Box 8637 APO AA 06259``).

A match then extends over up to four following short lines or comma-separated parts (unit,
city, region, country, postcode), stopping at anything that reads like a sentence. Measured
against pyap alone by ``bench/pii_bench.py`` (BENCHMARKS.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_SUFFIX = (r"street|streets|st|avenue|ave|road|roads|rd|lane|lanes|ln|drive|drives|dr|boulevard|blvd|court|courts|ct"
           r"|place|pl|square|squares|sq|terrace|way|ways|close|crescent|cres|parade|highway|hwy|plaza|circle|cir"
           r"|trail|parkway|pkwy|row|mews|gardens|grove|walk|park|point|points|green|greens|crossing|loop|pass"
           r"|path|pike|ridge|run|view|views|vista|alley|causeway|centre|center|common|commons|corner|corners"
           r"|creek|estate|estates|expressway|extension|field|fields|ford|forge|forges|fork|forks|freeway|garden"
           r"|gateway|glen|glens|harbor|harbour|heights|hill|hills|hollow|island|junction|key|keys|knoll|landing"
           r"|manor|meadow|meadows|mill|mills|motorway|mount|orchard|oval|port|ports|prairie|ranch|route|shore"
           r"|shores|spring|springs|station|summit|trace|track|tunnel|turnpike|union|valley|village|villages"
           r"|wells|wharf|quay|rise|vale|yard|avenida|avda\.?")
_CONTINENTAL = (r"strasse|straße|str\.|gasse|weg|allee|platz|damm|ufer|steig|vej|gade|vænget|gränd|vägen"
                r"|gatan|veien|veg|gata|tie|katu|kuja|polku|raitti|straat|laan|plein|gracht|kade|hove|singel|dreef"
                r"|út|utca|tér|körút|ulica|aleja|cesta|trg|ulice|náměstí|braut|vegur|stræti")
_PREFIX = (r"via|viale|vicolo|piazza|piazzale|corso|largo|rue|av\.|avda\.|avenida|calle|camino|paseo|plaza|rua"
           r"|travessa|praça|estrada|ul\.|al\.|chemin|impasse|allée|quai|cours|carrer|passeig|rambla|odos"
           r"|leoforos|λ\.|οδός|trg|bulevar|bd\.")
_WORD = r"[^\W\d_][\w'’.-]*"
_NUM = r"\d{1,6}[A-Za-z]?"
_UNIT = r"(?:apt\.?|apartment|suite|ste\.?|unit|flat)[ \t]*#?[ \t]*\d{1,5}[A-Za-z]?"

_STREET = re.compile(
    rf"(?i)(?<![\w-])(?:"
    rf"(?P<us>{_NUM}[ \t]+(?:\d{{1,5}}[ \t]+)?(?P<us_name>(?:{_WORD}[ \t]+){{1,4}}?)(?P<kw1>{_SUFFIX})\b\.?)"
    rf"|(?:{_NUM}[ \t]+)?(?P<eu_name>(?:{_WORD}[ \t]+){{0,3}})[^\W\d_]*(?P<kw2>{_CONTINENTAL})[ \t]+{_NUM}\b\.?"
    rf"|(?P<kw3>{_PREFIX})[ \t]+(?P<pre_name>(?:{_WORD}[ \t]+){{0,4}}){_NUM}\b"
    rf"|(?:(?:psc|unit)[ \t]+\d{{1,5}},?[ \t]+box[ \t]+\d{{1,5}}[ \t]*\n?[ \t]*)?(?:apo|fpo|dpo)[ \t]+a[aep][ \t]+\d{{5}}"
    rf"|(?:usns|usnv|uss)[ \t]+{_WORD}[ \t]*\n?[ \t]*(?:fpo|apo)[ \t]+a[aep][ \t]+\d{{5}}"
    rf"|p\.?[ \t]?o\.?[ \t]+box[ \t]+\d{{1,6}}"
    rf"|(?P<kw4>{_UNIT})"
    rf")(?![\w-])")
#: A following part of the same address: a unit, a place name, a region code or a postcode.
_PART = re.compile(rf"(?i)(?:(?:[ \t]*[\n,][ \t]*)+|[ \t]+)(?=\S)((?:{_UNIT}|[^\n,.!?;:()]{{1,32}}?)(?:\([^\n)]{{1,20}}\))?)"
                   rf"(?=[ \t]*(?:\n|,|$|[.?!]\s|\?))")
_PROSE = re.compile(r"(?i)\b(?:the|is|are|was|were|and|for|to|of|please|i|my|you|your|it|we|our|this|that|last"
                    r"|night|here|there|at|in|on|with|from|by|be|been|can|will|would|should|a|an|as|or|not)\b")
_LEADING_PROSE = re.compile(r"(?i)^(?:(?:the|is|are|was|on|in|at|to|of|and|from|by|near|a|an)[ \t]+)+")


def _extend(text: str, end: int) -> int:
    for _ in range(4):
        m = _PART.match(text, end)
        if not m or _PROSE.search(m.group(1)) or not re.search(r"[^\W_]", m.group(1)):
            break
        end = m.end(1)
    return end


def _plausible(m: re.Match[str], lowercase_text: bool) -> bool:
    """Street words must be capitalised (unless the whole text is lower case) and the name before a
    street type must not be prose: "2 cats on the way" is not an address."""
    keyword = next((m.group(g) for g in ("kw1", "kw2", "kw3", "kw4") if m.group(g)), None)
    if keyword and not lowercase_text and not (keyword[0].isupper() or keyword.isupper()
                                               or m.group("kw2") and m.group("eu_name") is not None):
        return False
    name = m.group("us_name") or m.group("pre_name") or ""
    return not _PROSE.search(name)


def street_addresses(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each street address, with the unit/city/postcode parts that follow it."""
    lowercase_text = not any(c.isupper() for c in text)
    covered = 0
    for m in _STREET.finditer(text):
        if m.start() < covered or not _plausible(m, lowercase_text):
            continue
        start = m.start() + len(_LEADING_PROSE.match(m.group()).group()) if _LEADING_PROSE.match(m.group()) \
            else m.start()
        if m.end() - start >= 5:
            covered = _extend(text, m.end())
            yield start, covered
