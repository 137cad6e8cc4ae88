"""Demo walk-through, judges part: define rule (and classifier) judges, run them, show failures.

``judge_steps(session, echo)`` is called by ``server/demo/walkthrough.py`` with its connected
``Session``. It runs on a dataset when one exists, else on the last week of production traffic.
An LLM judge runs only when a real endpoint is configured (``TRACESIEVE_JUDGE_BASE_URL`` and
``TRACESIEVE_JUDGE_MODEL``); otherwise the demo says how to configure one. It never shows a
scripted answer as if a model had written it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from server.demo.catalog import INTENTS
from server.providers import EndpointConfig

Echo = Callable[[str], None]

RULES: list[tuple[str, str, dict[str, Any], str]] = [
    ("grounded_citations", "citation_grounded", {"type": "citation_grounding"},
     "Every [kb-…] citation must be among the documents search_kb returned (the seed's deterministic check)."),
    ("tool_failures", "tool_error", {"type": "status", "trace_ok": False, "span_types": ["TOOL"]},
     "A tool call that errored."),
    ("answer_length", "answer_length", {"type": "length", "field": "output", "unit": "chars", "max": 2000},
     "Answers over the response budget."),
    ("right_tool", "correct_tool", {"type": "tool_call", "expected_by_metadata": "intent",
                                    "expected_tools": {i.name: list(i.tools) for i in INTENTS}},
     "The tools each intent needs, and no others."),
]
FAITHFUL = {"type": "llm", "fields": ["input", "output", "retrieved_context"], "pass_threshold": 0.6,
            "rubric": "Pass if every factual claim in the output is supported by the retrieved context and the "
                      "answer addresses the user's request; fail if it invents policies, numbers or citations."}


def judge_server_env() -> dict[str, str]:
    """Environment the stdio server needs for an LLM judge endpoint (the stdio client passes almost none).

    Merge into ``StdioServerParameters(env=...)``; it holds the endpoint settings and the API key
    variable they name, nothing else.
    """
    env = {k: v for k, v in os.environ.items() if k.startswith("TRACESIEVE_JUDGE_")}
    config = EndpointConfig.from_env()
    if config is not None and config.key_env in os.environ:
        env[config.key_env] = os.environ[config.key_env]
    return env


def _line(j: dict[str, Any]) -> str:
    rate = "—" if j["pass_rate"] is None else f"{j['pass_rate'] * 100:.1f}%"
    return (f"    {j['judge']:<24} pass {j['passed']:>5}  fail {j['failed']:>4}  unknown {j['unknown']:>4}  "
            f"pass rate {rate:>6}  [{j['evaluated_in']}, {j['duration_ms']} ms]")


async def _target(session: Any) -> tuple[dict[str, Any], str]:
    listed = await session.call("list_datasets", {}, "Is there a dataset version to evaluate?")
    names = listed.get("datasets", []) if isinstance(listed, dict) else []
    if names:
        d = names[0]
        ref = f"{d['name']}@{d['latest_version']}"
        return {"dataset": ref}, f"dataset {ref}"
    return ({"filter": "tags.environment = 'production'", "window": "7d", "sample_rate": 0.5},
            "a 50% sample of the last 7 days of production traffic (monitoring mode)")


async def _classifier(session: Any, echo: Echo) -> str | None:
    counts = await session.call("list_labels", {"limit": 1},
                                "Which criteria have enough human labels to train a classifier judge?")
    rows = sorted(((c["criterion"], c["fails"], c["passes"]) for c in counts.get("criteria", [])),
                  key=lambda r: -r[1]) if isinstance(counts, dict) else []
    usable = [r for r in rows if r[1] >= 3 and r[2] >= 3 and r[1] + r[2] >= 10]
    if not usable:
        echo("  Not enough human labels yet (need >= 10 with >= 3 pass and 3 fail); skipping the classifier judge.")
        return None
    criterion = usable[0][0]
    r = await session.call("train_classifier_judge", {"name": f"{criterion}_classifier", "criterion": criterion},
                           f"Train a classifier judge on the '{criterion}' labels.")
    if not isinstance(r, dict):
        return None
    echo(f"  {r['judge']['ref']}: {r['labels_used']} labels ({r['fails']} fail), cross-validated MCC "
         f"{r['cv_mcc']:.2f} — {r['advice']}")
    return r["judge"]["ref"]


async def judge_steps(session: Any, echo: Echo) -> None:
    """Define judges, run them on a dataset (or a live window), show failures; LLM judge if configured."""
    refs = []
    for name, criterion, spec, why in RULES:
        r = await session.call("define_judge", {"name": name, "kind": "rule", "criterion": criterion, "spec": spec},
                               f"Rule judge: {why}")
        if isinstance(r, dict):
            refs.append(r["judge"]["ref"])
            echo(f"  {r['judge']['ref']} ({'new' if r['created'] else 'unchanged'}): {r['judge']['explained']}")
    classifier = await _classifier(session, echo)
    if classifier:
        refs.append(classifier)

    target, described = await _target(session)
    run = await session.call("run_judges", {"judges": refs, **target}, f"Run the judges on {described}.")
    if not isinstance(run, dict):
        return
    echo(f"  run {run['run_id']}: {run['items']} items, status {run['status']}")
    for j in run["judges"]:
        echo(_line(j))
    worst = max(run["judges"], key=lambda j: j["failed"])
    fails = await session.call("get_run_results", {"run_id": run["run_id"], "verdict": "fail",
                                                   "judge": worst["judge"].split("@")[0], "limit": 3},
                               f"Why did {worst['judge']} fail? Read the first failures.")
    for r in fails.get("results", []) if isinstance(fails, dict) else []:
        echo(f"    {r['trace_id'][:14]}…  {r['rationale']}")

    if EndpointConfig.from_env() is None:
        echo("")
        echo("  LLM judges: no model endpoint configured, so none was run (nothing here is a model's answer).")
        echo("  To run one, set TRACESIEVE_JUDGE_BASE_URL (e.g. https://api.openai.com/v1 or a local "
             "OpenAI-compatible server),")
        echo("  TRACESIEVE_JUDGE_MODEL (e.g. gpt-4o-mini), TRACESIEVE_JUDGE_PROVIDER=openai|anthropic and the "
             "API key (OPENAI_API_KEY / ANTHROPIC_API_KEY),")
        echo("  then run `tracesieve demo` again — or connect an MCP client with sampling: its own model judges.")
        return
    r = await session.call("define_judge", {"name": "faithful", "kind": "llm", "criterion": "faithfulness",
                                            "spec": FAITHFUL}, "An LLM judge for what rules cannot see: faithfulness.")
    est = await session.call("run_judges", {"judges": ["faithful"], **target, "max_items": 20, "dry_run": True},
                             "Estimate tokens and cost before calling the model.")
    if isinstance(est, dict) and est.get("estimate"):
        e = est["estimate"]
        cost = "unknown price" if e["est_cost_usd"] is None else f"<= ${e['est_cost_usd']:.4f}"
        echo(f"  {e['llm_calls']} calls, ~{e['est_input_tokens']} input tokens, {cost}")
    llm = await session.call("run_judges", {"judges": ["faithful"], **target, "max_items": 20},
                             "Run it on 20 items with the configured model.")
    if isinstance(llm, dict):
        j = llm["judges"][0]
        echo(_line(j))
        echo(f"  model {llm['model']}: {j['input_tokens']} in / {j['output_tokens']} out tokens, "
             f"cost {j['cost_usd'] if j['cost_usd'] is not None else 'unknown (set TRACESIEVE_JUDGE_PRICE_IN/_OUT)'}")
