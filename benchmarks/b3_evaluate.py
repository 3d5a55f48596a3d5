"""B3: all baselines + both DER routers on 1,000 eval questions, all protocols (target: <= 2 s).

The recording holds fewer eval questions, so its eval rows are tiled to 1,000 (the arrays are
what the evaluation reads; tiling changes no per-question cost)."""

from __future__ import annotations

import numpy as np
from _common import RECORDING, table, timed, verdict

from der.env import RewardConfig, cost_weights
from der.evaluate import evaluate
from der.replay import load_replay
from der.train import TrainConfig, train_router


def main(n: int = 1000) -> str:
    data = load_replay(RECORDING)
    reference = train_router(data, TrainConfig(steps=256)).router
    stop = train_router(
        data, TrainConfig(steps=256, reward=RewardConfig(mode="deployable", features="state+confidence"))
    ).router
    routers = {"DER(PPO_router)_multistep": reference, "DER_stop(PPO_router)_learned": stop}
    base = data.indices("eval")
    rows = np.resize(base, n)
    w = cost_weights(data, data.indices("train"))
    seconds, res = timed(lambda: evaluate(data, rows, w, RewardConfig(), routers, confidence_threshold=0.5), repeat=3)
    n_methods = sum(len(v) for v in res.values())
    return table(
        "B3: evaluate every method on 1,000 eval questions, both protocols (target: <= 2 s)",
        ["questions", "methods x protocols", "seconds", "target"],
        [(n, n_methods, seconds, verdict(seconds <= 2))],
    )


if __name__ == "__main__":
    main()
