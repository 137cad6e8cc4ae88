"""Credentials found by gitleaks' rule set, run in-process over a string.

``data/gitleaks.toml`` is gitleaks' own default configuration, copied verbatim (MIT, see
``data/GITLEAKS_LICENSE``; commit 09242ce9 of config/gitleaks.toml): about 220 vendor rules,
each a regex with the keywords that must occur before it is tried, a minimum Shannon entropy
for the secret, and allowlists (regexes and stopwords) for known false positives. Rather than
keep a private list of key prefixes, this module applies gitleaks' semantics to text:

* a rule runs only when one of its keywords occurs in the lowercased text (what keeps 220
  regexes cheap per string);
* the secret is the rule's ``secretGroup``, else the first non-empty group, else the match;
* ``entropy`` is a floor on the secret's Shannon entropy (bits per character);
* a key and its value must share a line (except for multi-line formats), where gitleaks' ``\s``
  would pair an empty ``API_KEY=`` with the next line's ``REGION=eu-west-1``;
* global and per-rule allowlists drop a finding (``regexTarget`` secret, match or line; stopwords
  are substrings of the secret; ``condition = "AND"`` needs every listed check to hold).

Path-only allowlists are skipped: trace text has no file path. The Go patterns compile with the
``regex`` package (version 1), which accepts gitleaks' mid-pattern ``(?i)`` as RE2 does.
"""

from __future__ import annotations

import math
import tomllib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import regex

CONFIG = Path(__file__).with_name("data") / "gitleaks.toml"


def shannon_entropy(value: str) -> float:
    """Bits per character, as gitleaks computes it."""
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def _compile(pattern: str) -> regex.Pattern[str]:
    return regex.compile(pattern.replace(r"\z", r"\Z"), flags=regex.V1)


@dataclass(frozen=True)
class Allowlist:
    regexes: tuple[regex.Pattern[str], ...] = ()
    stopwords: tuple[str, ...] = ()
    target: str = "secret"
    all_of: bool = False

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Allowlist | None:
        if not raw.get("regexes") and not raw.get("stopwords"):
            return None  # path-only allowlists do not apply to trace text
        if raw.get("paths") and raw.get("condition", "").upper() == "AND":
            return None  # needs a path to hold, and trace text has none
        return cls(tuple(_compile(r) for r in raw.get("regexes", ())),
                   tuple(w.lower() for w in raw.get("stopwords", ())),
                   raw.get("regexTarget", "secret"), raw.get("condition", "").upper() == "AND")

    def allows(self, secret: str, match: str, line: str) -> bool:
        target = {"secret": secret, "match": match, "line": line}.get(self.target, secret)
        checks = []
        if self.regexes:
            checks.append(any(r.search(target) for r in self.regexes))
        if self.stopwords:
            lowered = secret.lower()
            checks.append(any(w in lowered for w in self.stopwords))
        return all(checks) if self.all_of else any(checks)


@dataclass(frozen=True)
class Rule:
    id: str
    pattern: regex.Pattern[str]
    keywords: tuple[str, ...]
    entropy: float | None
    secret_group: int | None
    allowlists: tuple[Allowlist, ...] = field(default=())

    @property
    def single_line(self) -> bool:
        """gitleaks lets ``\\s`` between a key and its value cross a newline; in text that pairs an
        empty ``key=`` with the next line. Only multi-line formats (curl commands, PEM keys) may."""
        return not self.id.startswith(("curl", "private-key"))

    def findings(self, text: str, lowered: str, global_allow: Allowlist) -> Iterator[tuple[int, int, str]]:
        if self.keywords and not any(k in lowered for k in self.keywords):
            return
        for m in self.pattern.finditer(text):
            group = self.secret_group
            if group is None:
                group = next((i for i in range(1, (m.re.groups or 0) + 1) if m.group(i)), 0)
            secret = m.group(group) or ""
            if not secret or (self.entropy and shannon_entropy(secret) < self.entropy):
                continue
            if self.single_line and "\n" in text[m.start():m.start(group)]:
                continue  # `API_KEY=` left empty: the next line's `REGION=eu-west-1` is not its value
            line_start = text.rfind("\n", 0, m.start()) + 1
            line_end = text.find("\n", m.end())
            line = text[line_start:line_end if line_end >= 0 else len(text)]
            if any(a.allows(secret, m.group(), line) for a in (global_allow, *self.allowlists)):
                continue
            yield m.start(group), m.end(group), self.id


@cache
def rules() -> tuple[tuple[Rule, ...], Allowlist]:
    """The parsed rule set (once per process) and the global allowlist."""
    config = tomllib.loads(CONFIG.read_text())
    out = []
    for raw in config["rules"]:
        if not raw.get("regex"):
            continue  # path-only rules (e.g. "pkcs12-file") have nothing to match in text
        allow = tuple(a for a in (Allowlist.parse(x) for x in raw.get("allowlists", ())) if a)
        out.append(Rule(raw["id"], _compile(raw["regex"]), tuple(k.lower() for k in raw.get("keywords", ())),
                        raw.get("entropy"), raw.get("secretGroup"), allow))
    global_allow = Allowlist.parse(config.get("allowlist", {})) or Allowlist()
    return tuple(out), global_allow


def scan(text: str) -> Iterator[tuple[int, int, str]]:
    """``(start, end, rule_id)`` for every credential gitleaks' rules find in ``text``."""
    all_rules, global_allow = rules()
    lowered = text.lower()
    for rule in all_rules:
        yield from rule.findings(text, lowered, global_allow)
