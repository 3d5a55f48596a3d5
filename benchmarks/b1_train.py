"""B1: `der train --steps 12000` on the bundled recording (reference hyperparameters), measured as a
whole process, beside what the reference's design (a live expert call inside every PPO step) costs on the
same experts: a few hundred real HTTP calls to a loopback server measured, plus the recorded median
latency of the experts, plus the PPO work itself, extrapolated to 12,000 steps and labelled so.
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


def replay_train(steps: int, threads: int = 1) -> tuple[float, float]:
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
                str(steps),
                "--torch-threads",
                str(threads),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        whole = time.perf_counter() - t0
    m = re.search(r"in ([\d.]+) s \(process", done.stdout)
    return float(m.group(1)), whole


def live_seconds_per_step(calls: int = 300) -> tuple[float, float]:
    """(HTTP seconds per call measured against a loopback server answering at once, the mean of the
    experts' recorded median latencies): a live step costs both, plus the PPO work replay measures."""
    sys.path.insert(0, str(ROOT))
    from der.experts import ExpertSpec, make_expert
    from der.replay import load_replay
    from tests.loopback import LoopbackExpertServer

    data = load_replay(RECORDING, with_obs=False)
    medians = [float(m) for m in data.median_latency(data.indices("train"))]
    models = [f"m{i}" for i in range(len(medians))]
    with LoopbackExpertServer(models) as srv:
        experts = [make_expert(ExpertSpec(name=m, backend="openai", model=m, base_urls=[srv.base])) for m in models]
        t0 = time.perf_counter()
        for i in range(calls):
            experts[i % len(experts)].call(f"step {i}")
        http_s = (time.perf_counter() - t0) / calls
    return http_s, sum(medians) / len(medians)


def main(steps: int = STEPS, live_calls: int = 300) -> str:
    train_s, whole_s = replay_train(steps)
    train2_s, whole2_s = replay_train(steps, threads=2)
    http_s, model_s = live_seconds_per_step(live_calls)
    live_12k = STEPS * (http_s + model_s + train_s / steps)
    whole_12k = whole_s if steps == STEPS else float("nan")
    rows = [
        (
            "der train, replay (measured)",
            steps,
            train_s,
            whole_s,
            f"{REFERENCE_S / whole_12k:,.0f}x",
            verdict(train_s <= 20 and whole_s <= 30),
        ),
        ("der train, replay, --torch-threads 2 (measured)", steps, train2_s, whole2_s, "-", "-"),
        (
            f"live calls in every step (extrapolated: {live_calls} loopback HTTP calls measured, "
            f"{http_s * 1e3:.1f} ms each, + the experts' mean median latency {model_s:.2f} s + replay's PPO time)",
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
