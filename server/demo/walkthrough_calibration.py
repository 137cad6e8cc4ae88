"""Demo walk-through, calibration part: queue → labels → judge calibration → a release the gate stops.

``calibration_steps(session, echo, store)`` is called by ``server/demo/walkthrough.py`` with
its connected ``Session``, after the judges part. The demo has no human reviewer, so the labels
come from the generator's known ground truth and are recorded as such (reviewer
``demo-ground-truth``); nothing here pretends a person decided. Without judges (the judges part
did not run) it stops after labelling and says what is missing: it never invents scores.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable
from typing import Any

import anyio

from server.demo.demo_store import DemoStore, truth_of
from server.demo.generate import DEMO_CRITERIA

Echo = Callable[[str], None]
REVIEWER = "demo-ground-truth"
RATIONALE = "demo generator's seeded ground truth (not a human judgement)"
QUEUE_CRITERION = "citation_grounded"
#: Labels of each class a calibration needs before its verdict counts (calibration_report's min_per_class).
MIN_PER_CLASS = 5
#: The release story: prompt v13 ("answer fully") went out in the last days and regressed citation grounding.
RELEASE = "attributes.prompt_version = '{}'"


async def _label(session: Any, echo: Echo, store: DemoStore, items: list[dict[str, Any]]) -> dict[str, int]:
    """Label ``items`` on every criterion from ground truth; the fewest labels of one class, per criterion."""
    # the ground truth of the queued traces, read from the store between two server calls
    truth = await session.offline(store, truth_of, [i["trace_id"] for i in items])
    echo("  The demo has no human reviewer: each queued trace is labelled on every criterion from the generator's")
    echo(f"  known ground truth, recorded as reviewer '{REVIEWER}' with that said in the rationale.")
    first = items[0]["trace_id"]
    value = truth[first].get(QUEUE_CRITERION, "pass")
    await session.call("label_trace", {"trace_id": first, "criterion": QUEUE_CRITERION, "value": value,
                                       "reviewer": REVIEWER, "rationale": RATIONALE},
                       "Label the top item (in a real session: after reading it with get_trace).")
    path = store.exports() / "demo-ground-truth-labels.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for item in items:
            for criterion in DEMO_CRITERIA:
                if criterion in truth.get(item["trace_id"], {}) and not (item["trace_id"] == first and
                                                                         criterion == QUEUE_CRITERION):
                    out.write(json.dumps({"trace_id": item["trace_id"], "criterion": criterion,
                                          "value": truth[item["trace_id"]][criterion], "reviewer": REVIEWER,
                                          "rationale": RATIONALE}) + "\n")
    r = await session.call("import_labels", {"file": path.name},
                           f"Import the rest as a JSONL file ({len(items)} traces × {len(DEMO_CRITERIA)} criteria).")
    if isinstance(r, dict):
        echo(f"  imported {r['imported']} labels ({r['already_present']} already present)")
    counts = await session.call("list_labels", {"limit": 1}, "What do the labels say per criterion?")
    rarer: dict[str, int] = {}
    for c in counts.get("criteria", []) if isinstance(counts, dict) else []:
        echo(f"    {c['criterion']:<18} {c['labelled_traces']:>3} traces: {c['fails']:>2} fail, {c['passes']:>3} pass")
        rarer[c["criterion"]] = min(c["fails"], c["passes"])
    return rarer


async def _calibrate(session: Any, echo: Echo, store: DemoStore, judges: list[dict[str, Any]],
                     plotted: str) -> None:
    for j in judges:
        r = await session.call("calibration_report", {"judge": j["name"], "include_plot": False},
                               f"Does {j['name']} agree with the labels on '{j['criterion']}'?")
        if not isinstance(r, dict):
            continue
        m = r["metrics"]
        mcc = m["mcc"]
        ci = f"[{mcc['low']:.2f}, {mcc['high']:.2f}]" if mcc["low"] is not None else ""
        mcc_text = "undefined" if mcc["value"] is None else f"{mcc['value']:.2f} {ci}"
        echo(f"  {r['verdict'].upper():<12} n={r['n']:<3} MCC {mcc_text}  κ "
             f"{'–' if m['kappa']['value'] is None else round(m['kappa']['value'], 2)}  — {r['verdict_reason']}")
        c = r.get("corrected_pass_rate")
        if c and c["corrected_pass_rate"] is not None:
            echo(f"  run {c['run_id']}: observed pass rate {c['observed_pass_rate']:.1%}, judge-bias-corrected "
                 f"{c['corrected_pass_rate']:.1%} [{c['low']:.1%}, {c['high']:.1%}]")
    png = store.exports() / f"calibration-{plotted}.png"
    raw = await session.client.call_tool("calibration_report", {"judge": plotted})
    images = [c for c in raw.content if getattr(c, "type", "") == "image"]
    if images:
        png.write_bytes(base64.b64decode(images[0].data))
        echo(f"  (the same report with its chart as MCP image content; saved to {png})")


async def _release(session: Any, echo: Echo, store: DemoStore, judges: list[dict[str, Any]]) -> None:
    names = [j["name"] for j in judges]
    runs = {}
    for side, version in (("baseline", "v12"), ("candidate", "v13")):
        r = await session.call("run_judges", {"judges": names, "filter": RELEASE.format(version)},
                               f"Run the judges on the {side}: all traffic answered with prompt {version}.")
        if not isinstance(r, dict):
            return
        runs[side] = r["run_id"]
        echo(f"  {r['run_id']}: {r['items']} items; " + ", ".join(
            f"{j['judge'].split('@')[0]} {j['pass_rate']:.1%}" for j in r["judges"] if j["pass_rate"] is not None))
    r = await session.call("compare_runs", {"baseline_run": runs["baseline"], "candidate_run": runs["candidate"]},
                           "Did v13 regress? (only judges calibrated to MCC ≥ 0.6 may gate)")
    if isinstance(r, dict):
        echo(f"  verdict: {r['verdict']} — {r['summary']}")
        for j in r["judges"]:
            delta = "–" if j["delta"] is None else f"{j['delta']:+.1%}"
            p = j["p_adjusted"] if j["p_adjusted"] is not None else j["p_value"]
            echo(f"    {j['judge']:<20} gates={'yes' if j['gating'] else 'no '} Δ {delta:>7}  "
                 f"p={'–' if p is None else f'{p:.2g}'}  {j['verdict']}")
    echo("")
    echo(f"▶ The CI gate on the same runs: tracesieve gate --baseline {runs['baseline']} --candidate {runs['candidate']}")
    async with session.outside(store):
        done = await anyio.run_process([sys.executable, "-m", "server", "gate", *store.cli_args(), "--baseline",
                                        runs["baseline"], "--candidate", runs["candidate"]], check=False)
    first = done.stdout.decode().splitlines()[:1]
    echo(f"  {first[0] if first else done.stderr.decode().strip()}")
    meaning = {0: "ok to ship", 1: "regression: the pipeline stops here", 2: "could not decide"}
    echo(f"  exit code {done.returncode} ({meaning.get(done.returncode, 'error')})")


async def calibration_steps(session: Any, echo: Echo, store: DemoStore) -> None:
    """Queue anomalies, label them (from ground truth, marked as such), calibrate each judge, gate a release."""
    echo("")
    echo("── Calibration: human labels → judge agreement → release gate ──")
    tools = {t.name for t in (await session.client.list_tools()).tools}
    judges: list[dict[str, Any]] = []
    if "list_judges" in tools:
        listed = await session.call("list_judges", {}, "Which judges exist, and which criterion does each check?")
        judges = [j for j in listed.get("judges", []) if j["kind"] == "rule"] if isinstance(listed, dict) else []
    cite = next((j["name"] for j in judges if j["criterion"] == QUEUE_CRITERION), None)
    args: dict[str, Any] = {"criterion": QUEUE_CRITERION, "limit": 40, "random_share": 0.25}
    if cite:
        args["filter"] = f"scores.{cite} IS NOT NULL"  # label traces the judge has scored, so they pair up
    q = await session.call("annotation_queue", args, "Which traces should a person label for citation grounding? "
                                                     "(anomalies first, a random quarter keeps estimates unbiased)")
    if not isinstance(q, dict) or not q.get("items"):
        return
    echo(f"  {len(q['items'])} of {q['population']} unlabelled traces; {q['anomalous']} show a signal: "
         + ", ".join(f"{k} {v}" for k, v in q["signal_counts"].items() if v))
    for item in q["items"][:4]:
        echo(f"    #{item['rank']} {item['trace_id'][:14]}… p={item['selection_probability']:.2g}  "
             + "; ".join(r["text"][:70] for r in item["reasons"][:2]))
    rarer = await _label(session, echo, store, q["items"])
    for _ in range(2):  # as calibration_report would ask: enough labels of each class before trusting a verdict
        short = [j for j in judges if rarer.get(j["criterion"], 0) < MIN_PER_CLASS]
        if not short:
            break
        more = await session.call("annotation_queue", {**args, "criterion": short[0]["criterion"],
                                                       "filter": f"scores.{short[0]['name']} IS NOT NULL"},
                                  f"Only {rarer.get(short[0]['criterion'], 0)} labels of one class for "
                                  f"'{short[0]['criterion']}': calibration needs {MIN_PER_CLASS} of each. "
                                  "Queue more traces to label.")
        if not isinstance(more, dict) or not more.get("items"):
            break
        rarer = await _label(session, echo, store, more["items"])
    if not judges:
        echo("  Judges are needed to go further (calibration, comparison, gate): define and run them first")
        echo("  (define_judge + run_judges). Nothing is calibrated or compared without real judge scores.")
        return
    await _calibrate(session, echo, store, judges, cite or judges[0]["name"])
    if "run_judges" in tools:
        await _release(session, echo, store, judges)
