"""PII detection: tracesieve's redactor against Microsoft Presidio's defaults, same corpus, same run.

    .venv/bin/python -m bench.pii_bench [--limit N] [--json out.json] [--ablate]

The corpus is ``bench/pii_corpus/corpus.jsonl`` (public labelled data only; sources and licences
in ``bench/pii_corpus/README.md``). Scores are span overlaps per type:

* recall: share of gold spans of a type overlapped by a detection **of that type**;
* precision: share of detections that overlap a gold span of their type (a detection of a type
  we do not redact, e.g. Presidio's DATE_TIME, counts against precision as "OTHER");
* negatives touched: share of snippets with no personal data in which something was redacted.

Spans the corpus marks ``ignore`` (bare ZIP codes) count neither way, and in snippets from a
secret scanner's suite (``labelled_types: ["SECRET"]``) only secret detections are scored: an
email in such a line is real but unlabelled. Speed is texts per second
on one core: CPU seconds of the process, pinned to one CPU with thread pools set to one, after a
warm-up pass (CPU time rather than wall time, so other load on the machine does not skew the ratio).
Presidio runs with its default recognizers and threshold over spaCy's small English model (its
default ``en_core_web_lg`` is not on PyPI); tracesieve runs ``tools.privacy.redaction.detect``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402 - after the thread settings, which must precede numpy's import
import json  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

CORPUS = Path(__file__).with_name("pii_corpus") / "corpus.jsonl"
TYPES = ("PERSON", "ADDRESS", "PHONE", "EMAIL", "CARD", "IBAN", "SSN", "NATIONAL_ID", "IP", "SECRET")
#: Presidio entity -> our type; anything else is "OTHER" (a false positive for redaction).
PRESIDIO_TYPES = {
    "PERSON": "PERSON", "LOCATION": "ADDRESS", "PHONE_NUMBER": "PHONE", "EMAIL_ADDRESS": "EMAIL",
    "CREDIT_CARD": "CARD", "IBAN_CODE": "IBAN", "US_SSN": "SSN", "IP_ADDRESS": "IP",
    "US_DRIVER_LICENSE": "NATIONAL_ID", "US_PASSPORT": "NATIONAL_ID", "US_ITIN": "NATIONAL_ID",
    "UK_NHS": "NATIONAL_ID", "US_BANK_NUMBER": "NATIONAL_ID", "MEDICAL_LICENSE": "NATIONAL_ID",
}

Span = tuple[str, int, int]
Detector = Callable[[str], list[Span]]


def load(limit: int | None) -> list[dict]:
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines()]
    return rows[:limit] if limit else rows


def tracesieve_detector(*, names: bool = True) -> Detector:
    from tools.privacy.redaction import detect  # noqa: PLC0415

    return lambda text: [(h.type, h.start, h.end) for h in detect(text, names=names)]


def _library_only(variant: str) -> Detector:
    """tracesieve with one of its own detectors replaced by the library it supplements (``--ablate``)."""
    import phonenumbers  # noqa: PLC0415

    from tools.privacy import addresses, gitleaks, name_cues, names, patterns, redaction  # noqa: PLC0415
    from tools.privacy.patterns import Hit  # noqa: PLC0415

    def gitleaks_only(text: str):  # noqa: ANN202
        return (Hit("SECRET", s, e, text[s:e]) for s, e, _ in gitleaks.scan(text))

    def us_matcher(text: str):  # noqa: ANN202 - libphonenumber's own matcher, default region US (the old detector)
        return (Hit("PHONE", m.start, m.end, m.raw_string)
                for m in phonenumbers.PhoneNumberMatcher(text, "US", leniency=phonenumbers.Leniency.VALID))

    def pyap_only(text: str):  # noqa: ANN202
        saved, addresses.street_addresses = addresses.street_addresses, lambda _t: iter(())
        try:
            return [Hit("ADDRESS", s, e, text[s:e]) for s, e in addresses.addresses(text)]
        finally:
            addresses.street_addresses = saved

    swap = {"secrets": (patterns.secrets, gitleaks_only), "phones": (patterns.phones, us_matcher),
            "addresses": (patterns.addresses, pyap_only)}

    def detect(text: str) -> list[Span]:
        detectors = list(patterns.PATTERN_DETECTORS)
        if variant in swap:
            old, new = swap[variant]
            detectors[detectors.index(old)] = new
        elif variant == "names":  # spaCy alone: no cue phrases, no coordinated siblings
            names._cache.clear()
        hits = [h for d in detectors for h in d(text)]
        if variant == "names":
            saved, name_cues.coordinated = name_cues.coordinated, lambda _t, _f: iter(())
            try:
                hits += list(names.names(text))
            finally:
                name_cues.coordinated = saved
        else:
            hits += list(names.names(text)) + list(name_cues.cued_names(text))
        return [(h.type, h.start, h.end) for h in redaction._non_overlapping(hits)]

    return detect


ABLATIONS = {"secrets": "SECRET", "phones": "PHONE", "addresses": "ADDRESS", "names": "PERSON"}


def presidio_detector() -> Detector:
    import tldextract  # noqa: PLC0415
    from presidio_analyzer import AnalyzerEngine  # noqa: PLC0415
    from presidio_analyzer.nlp_engine import NlpEngineProvider  # noqa: PLC0415

    from tools.privacy.names import MODEL_PACKAGES  # noqa: PLC0415

    # Presidio's email/URL validation asks tldextract, which would fetch the suffix list over the
    # network; its bundled snapshot gives the same answers offline.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())
    import importlib.util  # noqa: PLC0415

    model = next(m for m in MODEL_PACKAGES if importlib.util.find_spec(m))
    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]})
    engine = AnalyzerEngine(nlp_engine=provider.create_engine())
    return lambda text: [(PRESIDIO_TYPES.get(r.entity_type, "OTHER"), r.start, r.end)
                         for r in engine.analyze(text, language="en")]


def score(rows: list[dict], predictions: list[list[Span]]) -> dict:
    gold, found, tp, fp = Counter(), Counter(), Counter(), Counter()
    negatives = touched = 0
    for row, predicted in zip(rows, predictions):
        ignore = [tuple(x) for x in row.get("ignore", [])]
        labelled = row.get("labelled_types")  # a secret scanner's suite labels secrets only
        predicted = [p for p in predicted if not any(p[1] < e and s < p[2] for s, e in ignore)
                     and (labelled is None or p[0] in labelled)]
        spans = [(s["type"], s["start"], s["end"]) for s in row["spans"]]
        for kind, start, end in spans:
            gold[kind] += 1
            found[kind] += any(t == kind and s < end and start < e for t, s, e in predicted)
        for kind, start, end in predicted:
            hit = any(t == kind and s < end and start < e for t, s, e in spans)
            (tp if hit else fp)[kind] += 1
        if not spans:
            negatives += 1
            touched += bool(predicted)
    per_type = {k: {"gold": gold[k], "recall": found[k] / gold[k] if gold[k] else None,
                    "precision": tp[k] / (tp[k] + fp[k]) if tp[k] + fp[k] else None}
                for k in (*TYPES, "OTHER")}
    total_tp, total_fp = sum(tp.values()), sum(fp.values())
    return {"recall": sum(found.values()) / sum(gold.values()),
            "precision": total_tp / (total_tp + total_fp) if total_tp + total_fp else 1.0,
            "negatives_touched": touched / negatives if negatives else 0.0, "negatives": negatives,
            "per_type": per_type}


def run(rows: list[dict], detector: Detector) -> tuple[list[list[Span]], float]:
    for row in rows[:20]:
        detector(row["text"])  # warm-up: lazy model loads and regex compilation
    started = time.process_time()  # CPU seconds of this (single-threaded, pinned) process: fair on a busy host
    predictions = [detector(row["text"]) for row in rows]
    return predictions, len(rows) / (time.process_time() - started)


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f} %"


def table(results: dict[str, dict]) -> str:
    names = list(results)
    lines = ["| type | gold spans | " + " | ".join(f"{n} recall | {n} precision" for n in names) + " |",
             "|---|---:|" + "---:|---:|" * len(names)]
    first = results[names[0]]["per_type"]
    for kind in (*TYPES, "OTHER"):
        cells = [f"{_pct(results[n]['per_type'][kind]['recall'])} | {_pct(results[n]['per_type'][kind]['precision'])}"
                 for n in names]
        lines.append(f"| {kind} | {first[kind]['gold']} | " + " | ".join(cells) + " |")
    lines.append("| **all** | " + str(sum(v["gold"] for v in first.values())) + " | "
                 + " | ".join(f"**{_pct(results[n]['recall'])}** | **{_pct(results[n]['precision'])}**" for n in names)
                 + " |")
    lines.append("")
    for n in names:
        r = results[n]
        lines.append(f"- {n}: negatives touched {_pct(r['negatives_touched'])} of {r['negatives']}; "
                     f"{r['texts_per_s']:.0f} texts/s on one core")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="first N snippets only (a quick look)")
    parser.add_argument("--json", type=Path, help="also write the scores here")
    parser.add_argument("--ablate", action="store_true",
                        help="also score each of our own detectors against the library it supplements")
    parser.add_argument("--no-presidio", action="store_true", help="skip the Presidio baseline")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    rows = load(args.limit)
    detectors = {"tracesieve": tracesieve_detector()}
    if not args.no_presidio:
        detectors["Presidio defaults"] = presidio_detector()
    results = {}
    for name, detector in detectors.items():
        predictions, speed = run(rows, detector)
        results[name] = score(rows, predictions) | {"texts_per_s": speed}
    print(f"PII detection on {len(rows)} snippets of {CORPUS.relative_to(Path.cwd()) if CORPUS.is_relative_to(Path.cwd()) else CORPUS}\n")
    print(table(results))
    if len(results) > 1 and "Presidio defaults" in results:
        ratio = results["tracesieve"]["texts_per_s"] / results["Presidio defaults"]["texts_per_s"]
        print(f"\nspeed ratio tracesieve / Presidio: {ratio:.2f}x")
    if args.ablate:
        print("\nOur detectors against the library alone (same corpus, same scoring):\n")
        print("| detector | type | library alone: recall / precision | tracesieve: recall / precision |")
        print("|---|---|---:|---:|")
        ours = results["tracesieve"]["per_type"]
        for variant, kind in ABLATIONS.items():
            predictions, _ = run(rows, _library_only(variant))
            alone = score(rows, predictions)["per_type"][kind]
            results[f"library alone: {variant}"] = alone
            label = {"secrets": "gitleaks rules only", "phones": "libphonenumber matcher, region US",
                     "addresses": "pyap only", "names": "spaCy NER only"}[variant]
            print(f"| {label} | {kind} | {_pct(alone['recall'])} / {_pct(alone['precision'])} | "
                  f"{_pct(ours[kind]['recall'])} / {_pct(ours[kind]['precision'])} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
