"""B2: the replay environment alone, random actions (target: >= 100,000 steps/s)."""

from __future__ import annotations

import time

import numpy as np
from _common import RECORDING, table, verdict

from der.env import ReplayEnv, RewardConfig, cost_weights
from der.replay import load_replay


def main(steps: int = 300_000) -> str:
    data = load_replay(RECORDING)
    rows = data.indices("train")
    env = ReplayEnv(data, rows, RewardConfig(), cost_weights(data, rows))
    actions = np.random.default_rng(0).integers(0, data.n_experts, steps).tolist()
    env.reset(seed=0)
    t0 = time.perf_counter()
    episodes = 0
    for a in actions:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
            episodes += 1
    rate = steps / (time.perf_counter() - t0)
    return table(
        "B2: replay environment, random actions (target: >= 100,000 steps/s)",
        ["steps", "episodes", "steps/s", "target"],
        [(steps, episodes, f"{rate:,.0f}", verdict(rate >= 1e5))],
    )


if __name__ == "__main__":
    main()
