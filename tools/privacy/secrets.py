"""Credentials: gitleaks' rule set first, then the shapes it does not cover in chat and config text.

``gitleaks.scan`` carries the vendor rules (220 key formats, keyword context, entropy floors,
allowlists). gitleaks is built for source files, so three things it leaves out are kept here,
each measured by ``bench/pii_bench.py --ablate`` on the public corpus:

* key prefixes of LLM vendors it has no rule for yet (Groq ``gsk_``, Supabase ``sbp_``, …);
* PEM private keys spanning lines and ``Bearer`` tokens in pasted headers;
* assignments whose value has symbols gitleaks' generic rule stops at (``password=dipPr!1``),
  including typed declarations (``val password: String = "…"``: the value, not the type) and
  related keys (``password_confirmation``). A value never runs past the end of its line, so an
  empty ``key=`` does not swallow the next line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from tools.privacy import gitleaks

_PEM = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
#: Vendor prefixes missing from gitleaks' rule set (checked against data/gitleaks.toml).
_VENDOR = re.compile(
    r"(?<![A-Za-z0-9_-])(?:"
    r"sk-(?:proj-|ant-(?:api\d\d-)?|live-|svcacct-)?[A-Za-z0-9_-]{20,}"
    r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|gsk_[A-Za-z0-9]{40,}"
    r"|sbp_(?:v0_)?[0-9a-f]{40}"
    r"|tgp_v1_[A-Za-z0-9_-]{40,}"
    r"|llx-[A-Za-z0-9_-]{40,}"
    r"|r8_[A-Za-z0-9]{30,}"
    r"|pplx-[A-Za-z0-9]{40,}"
    r"|xai-[A-Za-z0-9]{40,}"
    r"|hf_[A-Za-z0-9]{30,}"
    r")(?![A-Za-z0-9_-])")
#: Command lines and SQL: `--password X`, `-p "X"`, `IDENTIFIED BY 'X'`, `WITH PASSWORD 'X'`.
_FLAG_OR_SQL = re.compile(r"(?i)(?:(?<![\w-])--?(?:password|passwd|pass|pwd|token|secret|api-key)|\bidentified[ \t]+by"
                          r"|\bpassword)[ \t]+([\"']?)([^\s\"';,)]{6,})\1")
_BEARER = re.compile(r"(?i)\b(?:bearer|token)[ \t]+([A-Za-z0-9._~+/-]{16,}=*)")
_KEY = (r"api[_-]?key|apikey|x-api-key|secret(?:[_-]?key)?|client[_-]?secret|access[_-]?token|auth[_-]?token"
        r"|refresh[_-]?token|id[_-]?token|session[_-]?token|password|passwd|pwd|pass|pw|passphrase|pswd|psword"
        r"|paswd|private[_-]?key|token|credentials?")
_RELATED = r"(?:[_.-]?(?:confirm(?:ation)?|again|repeat|new|old|current|hash|2))?"
_ASSIGNED = re.compile(
    r"(?i)(?<![A-Za-z0-9])[\"']?[A-Za-z]{0,12}?(?:" + _KEY + r")" + _RELATED + r"[A-Za-z]{0,8}[\"']?"
    r"(?:[ \t]*:[ \t]*[A-Za-z_][\w.<>\[\]?]*[ \t]*(?==))?"  # a type annotation: `password: String = "…"`
    r"(?:[ \t]*(?::=|=>|[:=])[ \t]*|[ \t]+is[ \t]+|[ \t]+(?=[\"']))"  # `pw=…`, "my password is …", `SET pw "…"`
    r"(?:\"([^\"\n]{4,})\"|'([^'\n]{4,})'|([^\s\"',;}<>]{6,}))")


def _looks_like_credential(value: str) -> bool:
    """At least two character classes (lower, upper, digit, symbol): 'expired' is not a password."""
    classes = sum((any(c.islower() for c in value), any(c.isupper() for c in value),
                   any(c.isdigit() for c in value), any(not c.isalnum() for c in value)))
    return classes >= 2 and not value.startswith(("http://", "https://", "<", "${", "{{", "%"))


def secrets(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of every credential in ``text``; spans may overlap (the caller merges)."""
    for start, end, _rule in gitleaks.scan(text):
        yield start, end
    for pattern in (_PEM, _JWT, _VENDOR):
        for m in pattern.finditer(text):
            yield m.start(), m.end()
    for m in _FLAG_OR_SQL.finditer(text):
        if _looks_like_credential(m.group(2)):
            yield m.start(2), m.end(2)
    for m in _BEARER.finditer(text):
        if _looks_like_credential(m.group(1)):
            yield m.start(1), m.end(1)
    for m in _ASSIGNED.finditer(text):
        group = next(i for i in (1, 2, 3) if m.group(i) is not None)
        value = m.group(group)
        if _looks_like_credential(value) or (group < 3 and " " not in value.strip() and len(value) >= 6):
            yield m.start(group), m.end(group)


#: A JSON key that names a credential: its string value is one whatever it looks like.
_SECRET_KEY = re.compile(r"(?i)(?:^|[_.-])(?:password|passwd|pwd|passphrase|secret|token|api[_-]?key|apikey"
                         r"|access[_-]?key|private[_-]?key|client[_-]?secret|credentials?)(?:$|[_.-])")


def keyed_secret(key: str, value: str) -> bool:
    """True when ``value`` sits under a credential's key (``"password_confirmation": "…"``) and is
    not an empty, placeholder or prose value."""
    value = value.strip()
    return (bool(_SECRET_KEY.search(key)) and 4 <= len(value) <= 512 and " " not in value
            and (_looks_like_credential(value) or len(value) >= 8))
