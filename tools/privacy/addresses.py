"""Street addresses through ``pyap2`` (a maintained fork of pyap: US, Canadian and UK formats).

pyap recognises an address by its structure (house number, street name and type, optional unit,
city, state or county, postcode), so it does not fire on a lone number or a city name. It costs
about half a millisecond per country per string, so strings without a number followed by a word
skip it. Other countries' formats come from ``street_forms`` (street-type vocabularies).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pyap

from tools.privacy.street_forms import street_addresses

COUNTRIES = ("US", "CA", "GB")
_MAYBE_ADDRESS = re.compile(r"\b\d{1,6}[A-Za-z]?,?\s+[A-Za-z]")
_SENTENCE_BREAK = re.compile(r"(?<=[a-z0-9])[.!?]\s+(?=[A-Z0-9])")  # not after an initial ("E. John")


def addresses(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each street address pyap or ``street_forms`` finds in ``text``."""
    yield from street_addresses(text)
    if not _MAYBE_ADDRESS.search(text):
        return
    for country in COUNTRIES:
        for address in pyap.parse(text, country=country):
            start, end = address.match_start, address.match_end
            # pyap's UK grammar can start a match in the previous sentence ("75062 please. Or 10 …").
            breaks = list(_SENTENCE_BREAK.finditer(text, start, end))
            if breaks:
                start = breaks[-1].end()
            if end - start >= 8:
                yield start, end
