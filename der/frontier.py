"""Cost-accuracy frontier under the learned-stop protocol.

For each alpha (the cost weight) a STOP router is trained and the confidence-stop threshold is
re-tuned on the train partition; methods without a cost knob are one point each. Every point is
(mean normalised cost, accuracy) on the eval partition. The Pareto frontier is the set of points
no other point beats on both; a method's *area under frontier* (AUF) is the area under its own
best-accuracy-at-cost step curve over [0, C], divided by C (C = the largest mean cost of any
non-oracle point), so routers are compared over the whole trade-off, not at one alpha.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from der.evaluate import evaluate, tune_confidence
from der.replay import ReplayData
from der.router import Router
from der.train import TrainConfig, train_router

ALPHAS = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0)
STOP_FAMILY = "DER_stop(PPO_router)_learned"
CONFIDENCE_FAMILY = "confidence_stop_multistep"


@dataclass
class Point:
    """One method at one setting: its eval accuracy and mean normalised cost."""

    family: str
    setting: str
    accuracy: float
    cost: float
    on_frontier: bool = False


def sweep(
    data: ReplayData,
    train: np.ndarray,
    rows: np.ndarray,
    weights: np.ndarray,
    cfg: TrainConfig,
    features: str,
    alphas: tuple[float, ...] = ALPHAS,
    trained: dict[float, Router] | None = None,
) -> list[Point]:
    """Train and evaluate across ``alphas``; returns every point (oracles left out).

    :param trained: STOP routers already trained with these settings, by alpha (not trained again).
    """
    points: list[Point] = []
    for i, alpha in enumerate(alphas):
        reward = replace(cfg.reward, alpha=alpha, mode="deployable", features=features)
        router = (trained or {}).get(alpha) or train_router(data, replace(cfg, reward=reward)).router
        threshold = tune_confidence(data, train, weights, reward)
        results = evaluate(
            data,
            rows,
            weights,
            reward,
            {STOP_FAMILY: router},
            seed=cfg.seed,
            protocols=("learned-stop",),
            confidence_threshold=threshold,
        )["learned-stop"]
        for r in results:
            if r.name.startswith("oracle"):
                continue
            family = r.name.split("(threshold")[0]
            if family in (STOP_FAMILY, CONFIDENCE_FAMILY):
                setting = f"alpha={alpha:g}" + (f", threshold={threshold:g}" if family == CONFIDENCE_FAMILY else "")
            elif i == 0:
                setting = "-"
            else:
                continue  # methods without a cost knob are the same at every alpha
            points.append(Point(family, setting, float(r.correct.mean()), float(r.cost.mean())))
    mark_frontier(points)
    return points


def dominates(accuracy: float, cost: float, other_accuracy: float, other_cost: float) -> bool:
    """True when (accuracy, cost) is at least as accurate and as cheap as the other, and better in one."""
    return accuracy >= other_accuracy and cost <= other_cost and (accuracy > other_accuracy or cost < other_cost)


def mark_frontier(points: list[Point]) -> None:
    """Flag the points no other point beats on both accuracy (higher) and cost (lower)."""
    for p in points:
        p.on_frontier = not any(dominates(q.accuracy, q.cost, p.accuracy, p.cost) for q in points)


def area_under(points: list[Point], cmax: float) -> float:
    """Area under the best-accuracy-at-cost step curve of ``points`` over [0, cmax], over cmax."""
    if cmax <= 0 or not points:
        return 0.0
    pts = sorted((min(p.cost, cmax), p.accuracy) for p in points)
    area, best = 0.0, 0.0
    for (c, a), nxt in zip(pts, [*pts[1:], (cmax, 0.0)], strict=True):
        best = max(best, a)
        area += best * (nxt[0] - c)
    return area / cmax


def summarise(points: list[Point]) -> dict[str, float]:
    """AUF per method family, best first."""
    cmax = max(p.cost for p in points)
    fams = sorted({p.family for p in points})
    auf = {f: area_under([p for p in points if p.family == f], cmax) for f in fams}
    return dict(sorted(auf.items(), key=lambda kv: -kv[1]))


__all__ = ["ALPHAS", "Point", "area_under", "dominates", "mark_frontier", "summarise", "sweep"]
