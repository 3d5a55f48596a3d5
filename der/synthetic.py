"""A synthetic warehouse for tests and scale benchmarks: real shards, made-up experts.

Each synthetic expert answers correctly with a fixed probability, is swayed towards the answer
it is handed by ``sway``, and has a log-normal latency. Rows are marked ``backend='synthetic'``
and questions ``source='synthetic'``, so they can never pass for a recording of real experts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from der.prompts import STATES
from der.store import EMBED_DIM, write_shard


def make_warehouse(
    root: str | Path,
    n_questions: int = 60,
    accuracies: tuple[float, ...] = (0.55, 0.7, 0.85),
    latencies_s: tuple[float, ...] = (0.2, 0.5, 1.5),
    sway: float = 0.3,
    seed: int = 0,
    with_embeddings: bool = True,
    shard_rows: int = 1_000_000,
) -> None:
    """Write questions, calls (E x 3 per question) and embeddings shards under ``root``."""
    rng = np.random.default_rng(seed)
    n, e = n_questions, len(accuracies)
    qids = np.array([f"syn{i:08d}" for i in range(n)])
    labels = rng.random(n) < 0.62
    partition = np.where(np.arange(n) % 3 == 0, "eval", "train")
    write_shard(
        root,
        "questions",
        pa.table(
            {
                "question_id": qids,
                "partition": partition,
                "question": [f"synthetic question {i}?" for i in range(n)],
                "passage": [f"synthetic passage {i}." for i in range(n)],
                "label": labels,
                "source": ["synthetic"] * n,
                "source_row": np.arange(n),
            }
        ),
    )
    acc = np.asarray(accuracies)[None, :]
    lat = np.asarray(latencies_s)[None, :]
    now = datetime.now(UTC)
    cols: dict[str, list[np.ndarray]] = {}
    for s, state in enumerate(STATES):
        p_correct = np.broadcast_to(acc, (n, e)).copy()
        if s > 0:  # handed an answer: drift towards it
            handed_yes = s == 1
            towards = np.where(labels[:, None] == handed_yes, 1.0, 0.0)
            p_correct = (1 - sway) * p_correct + sway * towards
        correct = rng.random((n, e)) < p_correct
        says_yes = np.where(correct, labels[:, None], ~labels[:, None])
        answers = np.where(says_yes, "yes", "no").astype("U7")
        answers[rng.random((n, e)) < 0.02] = "unknown"
        latency = lat * rng.lognormal(0.0, 0.25, (n, e))
        p_yes = np.clip(np.where(says_yes, 0.75, 0.25) + rng.normal(0, 0.15, (n, e)), 0.01, 0.99)
        q_idx = np.repeat(np.arange(n), e)
        e_idx = np.tile(np.arange(e), n)
        part = {
            "call_key": np.char.add(np.char.add(qids[q_idx], f"-{state}-"), e_idx.astype(str)),
            "question_id": qids[q_idx],
            "expert": np.char.add("syn-expert-", e_idx.astype(str)),
            "expert_fp": np.char.add("synfp", e_idx.astype(str)),
            "prev_answer": np.full(n * e, state),
            "step_kind": np.full(n * e, "first" if s == 0 else "ktp"),
            "answer": answers.reshape(-1),
            "raw_text": answers.reshape(-1),
            "latency_s": latency.reshape(-1),
            "p_yes": p_yes.reshape(-1),
        }
        for k, v in part.items():
            cols.setdefault(k, []).append(v)
    total = n * e * 3
    base = {k: np.concatenate(v) for k, v in cols.items()}
    for start in range(0, total, shard_rows):
        sl = slice(start, min(total, start + shard_rows))
        m = sl.stop - sl.start
        write_shard(
            root,
            "calls",
            pa.table(
                {
                    **{k: v[sl] for k, v in base.items()},
                    "backend": ["synthetic"] * m,
                    "model": ["synthetic"] * m,
                    "digest": [""] * m,
                    "template": ["ref-v1"] * m,
                    "prompt_chars": np.zeros(m, dtype=np.int64),
                    "status": ["ok"] * m,
                    "parser": ["synthetic"] * m,
                    "error": pa.nulls(m, pa.string()),
                    "attempts": np.ones(m, dtype=np.int32),
                    "host": ["synthetic"] * m,
                    "done_reason": ["stop"] * m,
                    "prompt_tokens": np.full(m, 300, dtype=np.int64),
                    "completion_tokens": np.ones(m, dtype=np.int64),
                    "load_s": pa.nulls(m, pa.float64()),
                    "prompt_eval_s": pa.nulls(m, pa.float64()),
                    "eval_s": pa.nulls(m, pa.float64()),
                    "server_total_s": pa.nulls(m, pa.float64()),
                    "run_id": ["synthetic"] * m,
                    "recorded_at": pa.array([now] * m, pa.timestamp("us", tz="UTC")),
                }
            ),
        )
    if with_embeddings:
        # Random unit vectors per question, nudged per state: enough signal for a policy to use.
        base_vec = rng.normal(size=(n, EMBED_DIM)).astype(np.float32)
        rows_q, rows_s, vecs = [], [], []
        for s, state in enumerate(STATES):
            v = base_vec.copy()
            v[:, s] += 3.0
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            rows_q.append(qids)
            rows_s.append(np.full(n, state))
            vecs.append(v)
        flat = np.concatenate(vecs).reshape(-1)
        write_shard(
            root,
            "embeddings",
            pa.table(
                {
                    "question_id": np.concatenate(rows_q),
                    "prev_answer": np.concatenate(rows_s),
                    "model": ["all-MiniLM-L6-v2"] * (3 * n),
                    "embedding": pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), EMBED_DIM),
                }
            ),
        )
