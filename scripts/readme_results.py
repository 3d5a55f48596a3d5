#!/usr/bin/env python3
"""Rewrite the README's results block from a pipeline run (by default `make demo`'s), so the numbers
the README shows are the ones the code produces, each under its protocol.

    make demo && python scripts/readme_results.py --run reports/demo

Copies the cost-accuracy figure to docs/figures/ (the README shows it) and replaces everything
between the `<!-- results:begin -->` and `<!-- results:end -->` markers of README.md.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

from der.frontier import dominates

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
PROTOCOLS = ("gold-stop", "fixed-budget", "learned-stop")
STOP_ROUTER = "DER_stop(PPO_router)_learned"


def combined_table(results: dict[str, list[dict]]) -> list[str]:
    """One row per method, accuracy and mean cost under each protocol."""
    names = [r["name"] for r in results["learned-stop"]]
    by = {p: {r["name"]: r for r in results[p]} for p in PROTOCOLS}
    head = " | ".join(f"`{p}` accuracy | `{p}` cost" for p in PROTOCOLS)
    lines = [f"| method | {head} |", "|---|" + "---:|" * (2 * len(PROTOCOLS))]
    for n in names:
        cells = " | ".join(f"{by[p][n]['accuracy_mean']:.3f} | {by[p][n]['cost_mean']:.2f}" for p in PROTOCOLS)
        lines.append(f"| {n} | {cells} |")
    return lines


def dominated_by(results: list[dict], name: str) -> list[str]:
    """Non-oracle methods that dominate ``name``: at least as accurate and as cheap, better in one."""
    me = next(r for r in results if r["name"] == name)
    return [
        r["name"]
        for r in results
        if not r["name"].startswith("oracle:")
        and dominates(r["accuracy_mean"], r["cost_mean"], me["accuracy_mean"], me["cost_mean"])
    ]


def quiet_note(manifest: dict) -> str:
    """What the manifest's quiet re-check says about the recorded latencies, if it has one."""
    qc = manifest.get("quiet_check")
    if not qc:
        return ""
    ratios = ", ".join(f"{e} {v['recorded_over_quiet_latency']['median']:.1f}x" for e, v in sorted(qc.items()))
    same = sum(v["identical_text"] for v in qc.values())
    calls = sum(v["calls"] for v in qc.values())
    return (
        f" Asked again on an idle machine, {same} of {calls} sampled calls gave identical text, and the recorded "
        f"latencies were, by median, these multiples of the quiet ones: {ratios}. Costs divide by each expert's "
        "own median, so a uniform slowdown cancels out."
    )


def block(report: dict, figure: str) -> str:
    prov, res = report["provenance"], report["end_results_eval"]
    learned = {r["name"]: r for r in res["learned-stop"]}
    singles = [r for r in res["learned-stop"] if r["name"].startswith("single_shot:")]
    best = max(singles, key=lambda r: (r["accuracy_mean"], -r["cost_mean"]))
    der = learned[STOP_ROUTER]
    beaten = dominated_by(res["learned-stop"], STOP_ROUTER)
    oracle = max(r["accuracy_mean"] for r in res["learned-stop"] if r["name"].startswith("oracle:"))
    n_eval, n_train = prov["eval_questions"], prov["train_questions"]
    se = (der["accuracy_mean"] * (1 - der["accuracy_mean"]) / n_eval) ** 0.5
    steps = report["config"]["train"]["steps"]
    lines = [
        f"From `make demo` ({report['timestamp'][:10]}): {prov.get('recording', prov['warehouse'])}. "
        f"Routers trained on the {n_train} router-train questions ({steps} PPO steps each, reference "
        f"hyperparameters, alpha {report['config']['train']['reward']['alpha']}), every number below on the "
        f"{n_eval} router-eval questions (one standard error of an accuracy near {der['accuracy_mean']:.2f} "
        f"is about {se:.3f}). Cost = latency / that expert's median first-step latency, summed over the calls "
        "of a question (1 = one median-latency call). Latencies were recorded on a 2-core machine that "
        "was not always quiet (see `warehouse/recording/manifest.json`)." + quiet_note(prov.get("manifest", {})),
        "",
        "Accuracy and mean cost of every method under each protocol:",
        "",
        *combined_table(res),
        "",
        "- `gold-stop` is the reference demo's protocol: a multi-step method stops the moment its answer "
        "equals the gold label. That reads the label at inference, so its multi-step numbers are an oracle, "
        "shown only to compare with the reference.",
        "- `fixed-budget` and `learned-stop` read no label at inference; they are what a deployed router gets. "
        "Under `fixed-budget` every multi-step method runs all tmax steps; under `learned-stop` each stops by "
        "its own rule. `oracle:*` rows read the label under every protocol (upper bounds).",
        f"- Under `learned-stop` the STOP router reaches {der['accuracy_mean']:.3f} at mean cost "
        f"{der['cost_mean']:.2f}; the best single expert, {best['name'].split(':')[-1]}, reaches "
        f"{best['accuracy_mean']:.3f} at {best['cost_mean']:.2f}. "
        + (
            "No baseline is both at least as accurate and cheaper: the router is on the Pareto frontier."
            if not beaten
            else f"Baselines at least as accurate and cheaper: {', '.join(beaten)}."
        ),
        f"- The oracle bound is {oracle:.3f}: for almost every question some expert under some chain answers "
        "correctly. "
        + (
            "No deployable method here (the STOP router, which sees the answer so far and the expert's "
            "first-token confidence; agreement stop; confidence stop) beats asking the strongest expert once: "
            "what these experts emit at inference does not tell which of them is right. The reference "
            "protocol's multi-step gains come from reading the label."
            if der["accuracy_mean"] <= best["accuracy_mean"]
            else f"The STOP router gains {der['accuracy_mean'] - best['accuracy_mean']:+.3f} over the best "
            "single expert without reading the label."
        ),
        "",
        f"![accuracy vs cost, every method and protocol, with the learned-stop Pareto frontier]({figure})",
        "",
        "Full tables, the alpha sweep of the frontier, every figure and sample traces: `reports/demo/report.md` "
        "and `report.html` after `make demo`.",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=ROOT / "reports" / "demo")
    a = ap.parse_args()
    report = json.loads((a.run / "report.json").read_text())
    fig = ROOT / "docs" / "figures" / "cost_accuracy.png"
    fig.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(a.run / "figures" / "cost_accuracy.png", fig)
    readme = ROOT / "README.md"
    text = readme.read_text()
    if BEGIN not in text:
        raise SystemExit(f"{readme} has no {BEGIN} ... {END} block")
    new = f"{BEGIN}\n{block(report, fig.relative_to(ROOT).as_posix())}\n{END}"
    readme.write_text(re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: new, text, flags=re.S))
    print(f"rewrote the results block of {readme}; figure {fig}")


if __name__ == "__main__":
    main()
