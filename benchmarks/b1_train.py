"""B1: `der train --steps 12000` on the bundled recording (reference hyperparameters), measured as a
whole process, beside a live run of a few hundred PPO steps whose every step calls a loopback
llama-server-like server (the reference's design), extrapolated to 12,000 steps and labelled so.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time

from _common import RECORDING, ROOT, table, verdict

REFERENCE_S = 17_266.0
STEPS = 12_000


def replay_train(steps: int) -> tuple[float, float]:
    """(training seconds reported by der train, whole process seconds)."""
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "der.cli",
                "train",
                "--warehouse",
                str(RECORDING),
                "--out",
                out,
                "--steps",
                str(STEPS),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        whole = time.perf_counter() - t0
    m = re.search(r"in ([\d.]+) s \(process", done.stdout)
    return float(m.group(1)), whole


def live_steps_per_s(steps: int = 300) -> float:
    """Environment steps per second when each step is a real HTTP call to a loopback expert server,
    with the recorded median latency of each expert slept by the server (as a live run would wait)."""
    sys.path.insert(0, str(ROOT))
    from der.experts import ExpertSpec, make_expert
    from der.replay import load_replay
    from tests.loopback import LoopbackExpertServer

    data = load_replay(RECORDING, with_obs=False)
    medians = data.median_latency(data.indices("train"))
    models = [f"m{i}" for i in range(len(data.experts))]
    delays = {m: float(d) for m, d in zip(models, medians, strict=True)}
    with LoopbackExpertServer(models, delay_s=delays) as srv:
        experts = [make_expert(ExpertSpec(name=m, backend="openai", model=m, base_urls=[srv.base])) for m in models]
        t0 = time.perf_counter()
        for i in range(steps):
            experts[i % len(experts)].call(f"step {i}")
        return steps / (time.perf_counter() - t0)


def main(steps: int = STEPS, live_steps: int = 300) -> str:
    train_s, whole_s = replay_train(steps)
    live_rate = live_steps_per_s(live_steps)
    live_12k = STEPS / live_rate
    whole_12k = whole_s if steps == STEPS else float("nan")
    rows = [
        (
            "der train, replay (measured)",
            STEPS,
            train_s,
            whole_s,
            f"{REFERENCE_S / whole_12k:,.0f}x",
            verdict(train_s <= 20 and whole_s <= 30),
        ),
        (
            "live calls per step, loopback server sleeping the recorded medians (300 steps, extrapolated)",
            STEPS,
            live_12k,
            live_12k,
            f"{REFERENCE_S / live_12k:,.1f}x",
            "-",
        ),
        ("reference demo, live Ollama (published)", STEPS, REFERENCE_S, REFERENCE_S, "1x", "-"),
    ]
    return table(
        "B1: train a router for 12,000 PPO steps (target: <= 20 s training, <= 30 s process)",
        ["run", "steps", "training s", "process s", "speed-up vs reference", "target"],
        rows,
    )


if __name__ == "__main__":
    main()
