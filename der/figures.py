"""PNG figures for the report (matplotlib, no display needed).

Each function takes plain data (report dicts, warehouse query rows) and writes one PNG; the
report embeds them in report.html and links them from report.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

PROTOCOL_MARKERS = {"gold-stop": "o", "fixed-budget": "s", "learned-stop": "^"}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


FAMILIES = [  # (name prefix, legend label, colour)
    ("DER_stop", "DER router with STOP", "C0"),
    ("DER(", "DER router (reference)", "C1"),
    ("single_shot", "single shot", "C2"),
    ("single_multistep", "self-refinement", "C3"),
    ("static:round_robin", "round robin", "C4"),
    ("random_router", "random router", "C5"),
    ("agreement_stop", "agreement stop", "C6"),
    ("confidence_stop", "confidence stop", "C8"),
    ("oracle", "oracles (read the label)", "0.7"),
]


def _family(name: str) -> tuple[str, str]:
    for prefix, label, colour in FAMILIES:
        if name.startswith(prefix):
            return label, colour
    return name, "k"


def cost_accuracy(results: dict[str, list[dict]], frontier: dict | None, path: Path) -> Path:
    """Accuracy vs mean normalised cost for every method (colour) and protocol (marker), with the
    learned-stop Pareto frontier and the STOP router's alpha sweep."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10.5, 5.5))
    seen: dict[str, Any] = {}
    for protocol, rows in results.items():
        for r in rows:
            label, colour = _family(r["name"])
            h = ax.scatter(
                r["cost_mean"],
                r["accuracy_mean"],
                marker=PROTOCOL_MARKERS.get(protocol, "o"),
                color=colour,
                edgecolors="k",
                linewidths=0.3,
                s=40,
            )
            seen.setdefault(label, h)
    handles = [ax.scatter([], [], marker="o", color=c, label=lab) for _, lab, c in FAMILIES if lab in seen]
    handles += [ax.scatter([], [], marker=m, c="w", edgecolors="k", label=p) for p, m in PROTOCOL_MARKERS.items()]
    if frontier:
        pts = sorted((p["cost"], p["accuracy"]) for p in frontier["points"] if p["on_frontier"])
        if pts:
            xs, ys = zip(*pts, strict=True)
            handles.append(ax.step(xs, ys, where="post", color="C3", lw=1.2, label="Pareto frontier (learned-stop)")[0])
        stop = sorted((p["cost"], p["accuracy"]) for p in frontier["points"] if p["family"].startswith("DER_stop"))
        if stop:
            xs, ys = zip(*stop, strict=True)
            handles.append(ax.plot(xs, ys, ":", color="C0", label="STOP router across alpha")[0])
    ax.set_xlabel("mean normalised cost per question (1 = one median-latency call)")
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy vs cost: colour = method, marker = protocol")
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


def accuracy_heatmap(rows: Sequence[tuple[str, str, str, float, int]], path: Path) -> Path:
    """Per-expert accuracy by step kind and the answer handed on (rows: expert, kind, prev, acc, n)."""
    plt = _plt()
    experts = sorted({r[0] for r in rows})
    cols = [("first", "none"), ("ktp", "yes"), ("ktp", "no")]
    grid = np.full((len(experts), len(cols)), np.nan)
    counts = np.zeros_like(grid)
    for e, kind, prev, acc, n in rows:
        if (kind, prev) in cols:
            grid[experts.index(e), cols.index((kind, prev))] = acc
            counts[experts.index(e), cols.index((kind, prev))] = n
    fig, ax = plt.subplots(figsize=(6.5, 1.2 + 0.6 * len(experts)))
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(cols)), ["first step", "KTP, handed yes", "KTP, handed no"])
    ax.set_yticks(range(len(experts)), experts)
    for i in range(len(experts)):
        for j in range(len(cols)):
            if not np.isnan(grid[i, j]):
                ax.text(
                    j,
                    i,
                    f"{grid[i, j]:.2f}\nn={int(counts[i, j])}",
                    ha="center",
                    va="center",
                    color="w" if grid[i, j] < 0.6 else "k",
                    fontsize=8,
                )
    fig.colorbar(im, ax=ax, label="accuracy")
    ax.set_title("Accuracy by step and answer handed on")
    return _save(fig, path)


def flip_matrix(rows: Sequence[tuple[str, str, int, float, int, int]], path: Path) -> Path:
    """How often KTP changes the handed-on answer, to right and to wrong
    (rows: expert, prev_answer, n_calls, flip_rate, flips_to_correct, flips_to_wrong)."""
    plt = _plt()
    labels = [f"{e}\nhanded {p}" for e, p, *_ in rows]
    n = np.array([r[2] for r in rows], dtype=float)
    right = np.array([r[4] for r in rows]) / np.maximum(n, 1)
    wrong = np.array([r[5] for r in rows]) / np.maximum(n, 1)
    kept = 1 - np.array([r[3] for r in rows])
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(rows)), 4.5))
    x = np.arange(len(rows))
    ax.bar(x, kept, color="0.8", label="kept the handed answer")
    ax.bar(x, right, bottom=kept, color="C2", label="flipped to correct")
    ax.bar(x, wrong, bottom=kept + right, color="C3", label="flipped to wrong")
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylabel("share of KTP calls")
    ax.set_title("KTP flips: does the next expert change the answer it is handed?")
    ax.legend(fontsize=8)
    return _save(fig, path)


def latency(rows: Sequence[tuple[str, float, float | None, float | None, float | None]], path: Path) -> Path:
    """Latency per expert: distribution (box) and the mean load / prompt / generation split
    (rows: expert, latency_s, load_s, prompt_eval_s, eval_s per call)."""
    plt = _plt()
    experts = sorted({r[0] for r in rows})
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    a1.boxplot([[r[1] for r in rows if r[0] == e] for e in experts], tick_labels=experts, showfliers=True)
    a1.set_ylabel("wall latency per call, s")
    a1.set_title("Latency distribution")
    a1.tick_params(axis="x", labelsize=7)
    bottom = np.zeros(len(experts))
    for k, (name, idx) in enumerate((("load", 2), ("prompt eval", 3), ("generation", 4))):
        vals = np.array([_mean_reported([r[idx] for r in rows if r[0] == e]) for e in experts])
        a2.bar(experts, vals, bottom=bottom, color=f"C{k}", label=name)
        bottom += vals
    other = np.array([np.mean([r[1] for r in rows if r[0] == e]) for e in experts]) - bottom
    a2.bar(experts, np.maximum(other, 0), bottom=bottom, color="0.8", label="transport / unreported")
    a2.set_ylabel("mean seconds per call")
    a2.set_title("Where the time goes (server-reported)")
    a2.tick_params(axis="x", labelsize=7)
    a2.legend(fontsize=8)
    return _save(fig, path)


def learning_curve(curves: dict[str, dict[str, list[float]]], path: Path, window: int = 50) -> Path:
    """Episode reward, accuracy and calls per episode over PPO steps (rolling mean), per router."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for name, c in curves.items():
        if not c.get("step"):
            continue
        steps = np.asarray(c["step"])
        for ax, key, title in zip(
            axes,
            ("reward", "correct", "calls"),
            ("episode reward", "correct final answer", "calls per episode"),
            strict=True,
        ):
            v = np.asarray(c[key], dtype=float)
            w = min(window, len(v))
            smooth = np.convolve(v, np.ones(w) / w, mode="valid")
            ax.plot(steps[w - 1 :], smooth, label=name)
            ax.set_title(title)
            ax.set_xlabel("PPO steps")
            ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return _save(fig, path)


def router_choices(picks: dict[str, np.ndarray], experts: list[str], path: Path) -> Path:
    """Which expert each router picks at each step, and how often it has stopped by then."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(picks), figsize=(5.5 * len(picks), 3.8), squeeze=False)
    for ax, (name, p) in zip(axes[0], picks.items(), strict=True):
        steps = p.shape[1]
        bottom = np.zeros(steps)
        for i, e in enumerate(experts):
            share = (p == i).mean(axis=0)
            ax.bar(range(steps), share, bottom=bottom, label=e, color=f"C{i}")
            bottom += share
        ax.bar(range(steps), (p == -1).mean(axis=0), bottom=bottom, color="0.85", label="stopped")
        ax.set_xticks(range(steps), [f"t={t}" for t in range(steps)])
        ax.set_title(name, fontsize=9)
        ax.set_ylabel("share of eval questions")
        ax.legend(fontsize=7)
    return _save(fig, path)


def _mean_reported(values: list[float | None]) -> float:
    """Mean of the values a server reported (0 when it reported none)."""
    got = [v for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(got)) if got else 0.0
