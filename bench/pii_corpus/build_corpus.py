"""Rebuild ``corpus.jsonl`` from the two public labelled sources (see README.md beside this file).

Run once by hand with local clones of the sources; the benchmark reads only the committed
``corpus.jsonl`` (nothing is downloaded when it runs):

    python -m bench.pii_corpus.build_corpus PRESIDIO_RESEARCH_CLONE CREDSWEEPER_CLONE

Every snippet and every span comes from the sources verbatim; this script only maps their
entity names onto ours and drops what the README lists as out of scope.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

OUT = Path(__file__).with_name("corpus.jsonl")

#: presidio-research entity -> our type; None = not personal data for us (a detection over it is
#: a false positive); "IGNORE" = may be redacted or not without counting either way.
PRESIDIO_TYPES = {
    "PERSON": "PERSON", "STREET_ADDRESS": "ADDRESS", "PHONE_NUMBER": "PHONE", "EMAIL_ADDRESS": "EMAIL",
    "CREDIT_CARD": "CARD", "IBAN_CODE": "IBAN", "US_SSN": "SSN", "IP_ADDRESS": "IP",
    "US_DRIVER_LICENSE": "NATIONAL_ID", "ZIP_CODE": "IGNORE",
}
#: CredSweeper rules whose values are identifiers rather than credentials: their snippets are dropped.
NOT_CREDENTIALS = {"UUID", "AWS S3 Bucket", "Firebase Domain", "Tencent WeChat API App ID", "Nonce", "Salt"}


def _git_show(clone: str, path: str) -> str:
    return subprocess.run(["git", "-C", clone, "show", f"HEAD:{path}"], check=True, capture_output=True,
                          text=True).stdout


def _head(clone: str) -> str:
    return subprocess.run(["git", "-C", clone, "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()


def presidio_rows(clone: str) -> list[dict]:
    rows = []
    for i, sample in enumerate(json.loads(_git_show(clone, "data/synth_dataset_v2.json"))):
        spans, ignore = [], []
        for s in sample["spans"]:
            kind = PRESIDIO_TYPES.get(s["entity_type"])
            if kind == "IGNORE":
                ignore.append([s["start_position"], s["end_position"]])
            elif kind:
                spans.append({"type": kind, "start": s["start_position"], "end": s["end_position"]})
        rows.append({"id": f"presidio-research/synth_dataset_v2/{i}", "text": sample["full_text"],
                     "spans": sorted(spans, key=lambda s: s["start"]), "ignore": ignore})
    return rows


def credsweeper_rows(clone: str) -> list[dict]:
    """One snippet per finding's lines (a multi-line PEM key is one snippet), deduplicated by text."""
    by_lines: dict[tuple, dict] = {}
    dropped: set[tuple] = set()
    for finding in json.loads(_git_show(clone, "tests/data/output.json")):
        lines = sorted({(d["path"], d["line_num"], d["line"]) for d in finding["line_data_list"]})
        key = tuple(lines)
        if finding["rule"] in NOT_CREDENTIALS:
            dropped.add(key)
            continue
        entry = by_lines.setdefault(key, {"rule": set(), "values": []})
        entry["rule"].add(finding["rule"])
        entry["values"] += [(d["path"], d["line_num"], d["value_start"], d["value_end"])
                            for d in finding["line_data_list"]]
    rows, seen = [], set()
    for key, entry in sorted(by_lines.items()):
        if key in dropped:
            continue
        offsets, text = {}, ""
        for path, num, line in key:
            offsets[(path, num)] = len(text) + (1 if text else 0)
            text = f"{text}\n{line}" if text else line
        if text in seen:
            continue
        seen.add(text)
        spans = sorted({(offsets[(p, n)] + s, offsets[(p, n)] + e) for p, n, s, e in entry["values"]
                        if (p, n) in offsets and 0 <= s < e})
        merged: list[list[int]] = []
        for s, e in spans:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        path, num, _ = key[0]
        rows.append({"id": f"credsweeper/{path.removeprefix('./')}:{num}", "text": text,
                     "spans": [{"type": "SECRET", "start": s, "end": e} for s, e in merged], "ignore": [],
                     "labelled_types": ["SECRET"]})
    return rows


def main(presidio_clone: str, credsweeper_clone: str) -> None:
    rows = presidio_rows(presidio_clone) + credsweeper_rows(credsweeper_clone)
    counts: defaultdict[str, int] = defaultdict(int)
    for r in rows:
        for s in r["spans"]:
            counts[s["type"]] += 1
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"{len(rows)} snippets ({sum(1 for r in rows if not r['spans'])} negatives) -> {OUT}")
    print("spans by type:", dict(sorted(counts.items())))
    print("presidio-research", _head(presidio_clone), "| CredSweeper", _head(credsweeper_clone))


if __name__ == "__main__":
    main(*sys.argv[1:3])
