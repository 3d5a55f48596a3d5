"""B7: client overhead per call: `der`'s expert call (slots, retries wrapper, parsing, validation)
against the same request sent raw with httpx to the same loopback server, interleaved.
Target: <= 3 % of call time and <= 2 ms absolute; call time is the bundled recording's fastest
expert's median latency (the loopback server itself answers in about a millisecond)."""

from __future__ import annotations

import statistics
import sys
import time

import httpx
from _common import RECORDING, ROOT, table, verdict

sys.path.insert(0, str(ROOT))


def main(n: int = 400) -> str:
    from der.experts import ExpertSpec, make_expert
    from der.replay import load_replay
    from tests.loopback import LoopbackExpertServer

    fastest = float(
        min(
            load_replay(RECORDING, with_obs=False).median_latency(
                load_replay(RECORDING, with_obs=False).indices("train")
            )
        )
    )
    rows = []
    with LoopbackExpertServer(["m:1b"]) as srv:
        for backend in ("ollama", "openai"):
            expert = make_expert(ExpertSpec(name="m", backend=backend, model="m:1b", base_urls=[srv.base]))
            url = srv.base + expert.path
            prompt = "Passage: a passage.\nQuestion: is it so?\nAnswer:"
            body = expert.payload(prompt)
            raw = httpx.Client()
            der_t, raw_t = [], []
            for _ in range(20):  # warm both connections
                expert.call(prompt)
                raw.post(url, json=body).json()
            for _ in range(n):
                t0 = time.perf_counter()
                expert.call(prompt)
                der_t.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                raw.post(url, json=body).json()
                raw_t.append(time.perf_counter() - t0)
            over = statistics.median(der_t) - statistics.median(raw_t)
            share = over / fastest
            rows.append(
                (
                    backend,
                    statistics.median(raw_t) * 1e3,
                    statistics.median(der_t) * 1e3,
                    over * 1e3,
                    f"{share:.3%}",
                    verdict(over <= 0.002 and share <= 0.03),
                )
            )
    return table(
        f"B7: client overhead per call (share of a {fastest:.2f} s call; target <= 3 %, <= 2 ms)",
        ["backend", "raw httpx ms", "der call ms", "overhead ms", "share of call", "target"],
        rows,
    )


if __name__ == "__main__":
    main()
