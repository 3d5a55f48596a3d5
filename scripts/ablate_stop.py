#!/usr/bin/env python3
"""Ablations behind the STOP router's design (docs/stop.md): observation features and reward terms,
over several seeds, evaluated under learned-stop on the eval partition of a warehouse.

    python scripts/ablate_stop.py --warehouse warehouse/recording --seeds 3 --steps 12000
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from der.env import RewardConfig, cost_weights
from der.evaluate import cheapest_first, evaluate, methods, rollout, tune_confidence
from der.replay import load_replay
from der.train import TrainConfig, train_router

VARIANTS = [
    ("embedding only (reference observation)", {"features": "reference"}),
    ("+ state (answer so far, last expert, step)", {"features": "state"}),
    ("+ state + confidence (default)", {"features": "state+confidence"}),
    ("default, no shaping term (beta = 0)", {"features": "state+confidence", "beta": 0.0}),
    ("default, no cost (alpha = 0)", {"features": "state+confidence", "alpha": 0.0}),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warehouse", default="warehouse/recording")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=12000)
    a = ap.parse_args()
    data = load_replay(a.warehouse)
    train, rows = data.indices("train"), data.indices("eval")
    w = cost_weights(data, train)
    base = RewardConfig(mode="deployable")
    print(f"{len(train)} train / {len(rows)} eval questions; {a.seeds} seeds x {a.steps} PPO steps\n")
    print("| STOP router variant | accuracy (mean +- sd) | mean cost | mean calls |")
    print("|---|---:|---:|---:|")
    for label, change in VARIANTS:
        acc, cost, calls = [], [], []
        for seed in range(a.seeds):
            reward = replace(base, **change)
            router = train_router(data, TrainConfig(steps=a.steps, seed=seed, reward=reward)).router
            r = next(
                x
                for x in evaluate(data, rows, w, reward, {"stop": router}, protocols=("learned-stop",))["learned-stop"]
                if x.name == "stop"
            )
            acc.append(r.correct.mean())
            cost.append(r.cost.mean())
            calls.append(r.calls.mean())
        print(
            f"| {label} | {np.mean(acc):.3f} +- {np.std(acc):.3f} | {np.mean(cost):.2f} | {np.mean(calls):.2f} |",
            flush=True,
        )
    th = tune_confidence(data, train, w, base)
    print("\nBaselines on the same eval questions (learned-stop):\n")
    print("| method | accuracy | mean cost | mean calls |\n|---|---:|---:|---:|")
    for m in methods(data, w, base.tmax, 7, confidence_threshold=th):
        r = rollout(data, rows, m, "learned-stop", w, base)
        print(f"| {m.name} | {r.correct.mean():.3f} | {r.cost.mean():.2f} | {r.calls.mean():.2f} |")
    order = ", ".join(data.experts[i] for i in cheapest_first(w))
    print(f"\n(cheapest-first order for agreement/confidence stop: {order}; confidence threshold {th:g})")


if __name__ == "__main__":
    main()
