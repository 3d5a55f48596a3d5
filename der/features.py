"""Router observations: the reference's embedding, optionally with the routing state.

``reference``: the MiniLM embedding of ``Q: <question>\\nA: <answer so far>`` alone (the
reference demo's observation). MiniLM reads at most 256 tokens, so on long passages the answer at
the end of that text is cut off and the embedding cannot tell the states apart; the step and the
last expert are not visible either.

``state`` adds what a deployed router knows for certain: the answer so far (one-hot none / yes /
no), the last expert asked (one-hot, none at the first step) and the step fraction t / tmax.
``confidence`` adds the last answer's confidence from the expert's first-token log-probabilities,
``|2 P(yes) - 1|``, and a flag saying whether the expert gave log-probabilities at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from der.replay import ReplayData

Features = Literal["reference", "state", "state+confidence"]
FEATURES: tuple[Features, ...] = ("reference", "state", "state+confidence")


@dataclass(frozen=True)
class ObsSpec:
    """Shape of an observation vector: which features, for how many experts, up to which tmax."""

    features: Features
    n_experts: int
    tmax: int
    embed_dim: int = 384

    @property
    def dim(self) -> int:
        extra = 0
        if self.features != "reference":
            extra += 3 + self.n_experts + 1
        if self.features == "state+confidence":
            extra += 2
        return self.embed_dim + extra

    def build(
        self,
        data: ReplayData,
        rows: np.ndarray,
        s: np.ndarray,
        t: int | np.ndarray,
        prev_a: np.ndarray,
        prev_s: np.ndarray,
    ) -> np.ndarray:
        """Observations for questions ``rows`` in states ``s`` at step ``t``, after asking ``prev_a``
        (-1 at the first step) in state ``prev_s``. All arrays have one entry per question."""
        assert data.obs is not None, "observations need state embeddings"
        emb = data.obs[rows, s]
        if self.features == "reference":
            return emb
        n = len(rows)
        state = np.zeros((n, 3), dtype=np.float32)
        state[np.arange(n), s] = 1.0
        last = np.zeros((n, self.n_experts), dtype=np.float32)
        asked = prev_a >= 0
        last[np.flatnonzero(asked), prev_a[asked]] = 1.0
        step = np.broadcast_to(np.asarray(t, dtype=np.float32) / self.tmax, (n,))[:, None]
        parts = [emb, state, last, step]
        if self.features == "state+confidence":
            p = np.full(n, np.nan, dtype=np.float32)
            p[asked] = data.p_yes[rows[asked], prev_s[asked], prev_a[asked]]
            has = ~np.isnan(p)
            parts += [np.where(has, np.abs(2 * p - 1), 0.0)[:, None], has[:, None].astype(np.float32)]
        return np.concatenate(parts, axis=1).astype(np.float32)
