"""Reports: report.json (the reference's top-level keys plus protocol and provenance) and report.md."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from der.env import step_cost
from der.evaluate import PROTOCOLS, Rollout, answer_name, scored
from der.prompts import STATES
from der.replay import NEXT_STATE, S_NONE, ReplayData

PROTOCOL_NOTES = {
    "gold-stop": (
        "the reference's protocol: a multi-step method stops as soon as its answer equals the gold label "
        "(unknown scored as 'no'). It reads the label at inference: an oracle, for comparison with the reference."
    ),
    "fixed-budget": (
        "deployable: nothing reads the label at inference; multi-step methods run all tmax steps (ignoring "
        "any stopping rule of their own) and the last answer counts (unknown is wrong)."
    ),
    "learned-stop": (
        "deployable: nothing reads the label at inference; each method stops by its own rule (the STOP "
        "router's STOP action, agreement of two consecutive experts, a confident expert) or after its steps; "
        "the last answer counts."
    ),
}
ORACLE_NOTE = "methods named oracle:* read the label under every protocol (upper bounds)."


def traces(
    data: ReplayData,
    rows: np.ndarray,
    rollout: Rollout,
    weights: np.ndarray,
    cost_mode: str,
    raw: dict[tuple[str, str, str], str],
    questions: dict[str, str],
    protocol: str = "fixed-budget",
) -> list[dict[str, Any]]:
    """Per-question step traces in the reference's der_samples format (``acc`` scored as the
    protocol scores: under gold-stop an unknown answer counts as "no")."""
    out = []
    for k, r in enumerate(rows):
        qid = data.question_ids[r]
        s, steps = S_NONE, []
        for t in range(rollout.picks.shape[1]):
            a = int(rollout.picks[k, t])
            if a < 0:
                break
            code = int(data.answer[r, s, a])
            steps.append(
                {
                    "t": t,
                    "pick": data.experts[a],
                    "handed": STATES[s],
                    "ans": answer_name(code),
                    "gold": "yes" if data.label[r] else "no",
                    "acc": float(scored(data, np.array([r]), np.array([code]), protocol)[0]),
                    "latency": float(data.latency[r, s, a]),
                    "tokens": None if np.isnan(data.tokens[r, s, a]) else int(data.tokens[r, s, a]),
                    "cost": float(step_cost(data, r, s, a, weights, cost_mode)),
                    "p_yes": None if np.isnan(data.p_yes[r, s, a]) else float(data.p_yes[r, s, a]),
                    "raw": raw.get((qid, data.experts[a], STATES[s]), ""),
                }
            )
            s = int(NEXT_STATE[code])
        out.append(
            {
                "idx": int(r),
                "question_id": qid,
                "q": questions.get(qid, ""),
                "gold": "yes" if data.label[r] else "no",
                "final": steps[-1]["ans"] if steps else "",
                "correct": bool(rollout.correct[k]),
                "calls": int(rollout.calls[k]),
                "total_latency": float(rollout.latency[k]),
                "total_cost": float(rollout.cost[k]),
                "trace": steps,
            }
        )
    return out


def build_report(
    *,
    config: dict[str, Any],
    data: ReplayData,
    weights: np.ndarray,
    probe: dict[str, list[Rollout]],
    results: dict[str, list[Rollout]],
    samples: dict[str, list[dict[str, Any]]],
    train_time_sec: float,
    provenance: dict[str, Any],
    curve: dict[str, list[float]] | None = None,
) -> dict[str, Any]:
    """The report document; its first seven keys are the reference's."""
    return {
        "config": config,
        "calibration": {"median_latency_sec": {e: float(1.0 / w) for e, w in zip(data.experts, weights, strict=True)}},
        "begin_probe_baselines": {p: [r.summary() for r in rs] for p, rs in probe.items()},
        "end_results_eval": {p: [r.summary() for r in rs] for p, rs in results.items()},
        "der_samples": samples,
        "train_time_sec": train_time_sec,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "protocols": {p: PROTOCOL_NOTES[p] for p in results},
        "oracle_note": ORACLE_NOTE,
        "provenance": provenance,
        "learning_curve": curve or {},
    }


def results_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of method summaries."""
    lines = [
        "| method | accuracy | mean calls | mean latency s | mean cost |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['accuracy_mean']:.3f} | {r['calls_mean']:.2f} | "
            f"{r['latency_mean']:.2f} | {r['cost_mean']:.2f} |"
        )
    return "\n".join(lines)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def render_markdown(report: dict[str, Any], figures: dict[str, Path] | None = None, folder: Path | None = None) -> str:
    """report.md: provenance, one results table per protocol, the frontier, figures, sample traces."""
    prov = report["provenance"]
    cal = report["calibration"]["median_latency_sec"]
    parts = [
        "# der report",
        "",
        f"- generated: {report['timestamp']}",
        f"- warehouse: `{prov.get('warehouse')}` (cache fingerprint `{prov.get('cache_fingerprint')}`)",
        f"- questions: {prov.get('train_questions')} train, {prov.get('eval_questions')} eval"
        f" ({prov.get('incomplete_questions', 0)} left out: incomplete recording)",
        f"- experts: {', '.join(f'{e} (median {v:.2f} s)' for e, v in cal.items())}",
        f"- PPO: {report['config'].get('train', {}).get('steps')} steps in {report['train_time_sec']:.1f} s",
        "",
    ]
    if prov.get("recording"):
        parts += [f"- recording: {prov['recording']}", ""]
    for protocol, rows in report["end_results_eval"].items():
        parts += [f"## Protocol `{protocol}`", "", report["protocols"][protocol], "", results_table(rows), ""]
    parts += [f"_{report['oracle_note']}_", ""]
    front = report.get("frontier")
    if front:
        parts += [
            "## Cost-accuracy frontier (`learned-stop`)",
            "",
            "Each STOP router and confidence threshold is trained / tuned at one alpha; * marks the Pareto "
            "frontier (no other point is both more accurate and cheaper).",
            "",
            "| method | setting | accuracy | mean cost | frontier |",
            "|---|---|---:|---:|:-:|",
        ]
        for p in sorted(front["points"], key=lambda p: p["cost"]):
            parts.append(
                f"| {p['family']} | {p['setting']} | {p['accuracy']:.3f} | {p['cost']:.2f} | "
                f"{'*' if p['on_frontier'] else ''} |"
            )
        parts += [
            "",
            "Area under each method's accuracy-vs-cost curve (higher is better, cost axis up to the "
            "largest mean cost):",
            "",
        ]
        parts += [f"- {fam}: {auf:.3f}" for fam, auf in front["area_under_frontier"].items()]
        parts.append("")
    if figures:
        parts += ["## Figures", ""]
        parts += [f"![{name}]({p.relative_to(folder) if folder else p})" for name, p in figures.items()]
        parts.append("")
    for protocol, samples in report["der_samples"].items():
        parts += [f"## Sample traces: DER router, `{protocol}`", ""]
        for s in samples:
            mark = "correct" if s["correct"] else "wrong"
            parts.append(
                f"- **{_md_escape(s['q'])}** gold `{s['gold']}`, final `{s['final']}` ({mark}, "
                f"{s['calls']} calls, {s['total_latency']:.2f} s)"
            )
            for st in s["trace"]:
                parts.append(
                    f"  - t={st['t']} {st['pick']} (handed {st['handed']}) -> `{st['ans']}` "
                    f'in {st["latency"]:.2f} s: "{_md_escape(st["raw"])[:80]}"'
                )
        parts.append("")
    return "\n".join(parts)


def make_figures(
    report: dict[str, Any], warehouse: str, experts: list[str], picks: dict[str, np.ndarray], folder: Path
) -> dict[str, Path]:
    """Write every PNG figure into ``folder/figures``; returns them by name."""
    from der import figures as fig
    from der.warehouse import Warehouse

    out = folder / "figures"
    out.mkdir(parents=True, exist_ok=True)
    with Warehouse(warehouse) as wh:
        sel = "expert in (select unnest(?::varchar[]))"
        acc = wh.query_rows(
            f"select expert, step_kind, prev_answer, accuracy, n_calls from expert_accuracy where {sel}", [experts]
        )
        flips = wh.query_rows(
            "select expert, prev_answer, n_calls, flip_rate, flips_to_correct, flips_to_wrong from ktp_flips "
            f"where {sel} order by expert, prev_answer",
            [experts],
        )
        lat = wh.query_rows(
            f"select expert, latency_s, load_s, prompt_eval_s, eval_s from calls where status = 'ok' and {sel}",
            [experts],
        )
    made = {
        "cost_accuracy": fig.cost_accuracy(
            report["end_results_eval"], report.get("frontier"), out / "cost_accuracy.png"
        ),
        "accuracy_heatmap": fig.accuracy_heatmap(acc, out / "accuracy_heatmap.png"),
        "latency": fig.latency(lat, out / "latency.png"),
        "learning_curve": fig.learning_curve(report.get("learning_curve") or {}, out / "learning_curve.png"),
        "router_choices": fig.router_choices(picks, experts, out / "router_choices.png"),
    }
    if flips:
        made["flip_matrix"] = fig.flip_matrix(flips, out / "flip_matrix.png")
    return made


def write_report(
    report: dict[str, Any], folder: str | Path, figures: dict[str, Path] | None = None
) -> tuple[Path, Path]:
    """Write report.json, report.md and the self-contained report.html into ``folder``."""
    from der.report_html import render

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    js, md = folder / "report.json", folder / "report.md"
    js.write_text(json.dumps(report, indent=2, default=_jsonable))
    md.write_text(render_markdown(report, figures or {}, folder))
    (folder / "report.html").write_text(render(report, figures or {}))
    return js, md


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


__all__ = ["PROTOCOLS", "build_report", "render_markdown", "results_table", "traces", "write_report"]
