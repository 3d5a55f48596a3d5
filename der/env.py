"""The replay environment: the reference's routing MDP, stepping through recorded answers.

Everything a step needs is an array lookup in :class:`der.replay.ReplayData`; no HTTP and no
embedding model run inside ``step``. Reward, termination and the no-repeat rule are the
reference demo's (docs/reference.md):

- t = 0: ``q - alpha * cost``; t > 0: ``q + beta * (q - q_prev) - alpha * cost``
- ``q >= p0``: ``+gamma`` and terminated; otherwise at t = tmax: ``-gamma`` and truncated
- no-repeat: picking the previous expert again is replaced by ``(a + 1) % E``, minus 0.05
- cost = latency x cost_weight[e], cost_weight = 1 / that expert's median first-step latency
  on the train partition (``latency_tokens`` mode multiplies by ``1 + 0.01 * tokens``)

The terminal bonus reads the gold label, as in the reference: this is the training signal for
the ``gold-stop`` protocol. Evaluation never needs the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np

from der.errors import ConfigError
from der.replay import NEXT_STATE, S_NONE, ReplayData


@dataclass
class RewardConfig:
    """Reward and episode settings (reference defaults)."""

    tmax: int = 3
    """Most experts asked per question."""
    alpha: float = 0.2
    """Weight of the normalised latency cost."""
    beta: float = 0.8
    """Weight of the improvement over the previous step's quality."""
    gamma: float = 0.6
    """Bonus on reaching p0, penalty on running out of steps."""
    p0: float = 1.0
    """Quality that ends an episode."""
    no_repeat: bool = True
    """Replace a repeated expert by the next one, with a penalty."""
    repeat_penalty: float = 0.05
    cost_mode: Literal["latency", "latency_tokens"] = "latency"

    def validate(self) -> None:
        """Reject settings that make the reward meaningless."""
        if self.tmax < 1:
            raise ConfigError(f"tmax must be >= 1 (got {self.tmax})")
        for name in ("alpha", "beta", "gamma", "repeat_penalty"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0 (got {getattr(self, name)}); it is a weight")
        if not 0 < self.p0 <= 1:
            raise ConfigError(f"p0 must be in (0, 1] (got {self.p0})")


def cost_weights(data: ReplayData, rows: np.ndarray) -> np.ndarray:
    """1 / median first-step latency per expert over ``rows`` (the reference's calibration)."""
    med = data.median_latency(rows)
    if np.isnan(med).any() or (med <= 0).any():
        raise ConfigError("cannot calibrate cost: an expert has no first-step latency on the train partition")
    return (1.0 / med).astype(np.float32)


def step_cost(data: ReplayData, q: Any, s: Any, a: Any, weights: np.ndarray, mode: str) -> Any:
    """Normalised cost of asking expert ``a`` in state ``s`` of question ``q`` (arrays broadcast)."""
    cost = data.latency[q, s, a] * weights[a]
    if mode == "latency_tokens":
        cost = cost * (1.0 + 0.01 * np.nan_to_num(data.tokens[q, s, a]))
    return cost


class ReplayEnv(gym.Env):
    """Gymnasium env over recorded answers; one episode routes one question for up to tmax steps."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, data: ReplayData, rows: np.ndarray, reward: RewardConfig, weights: np.ndarray) -> None:
        reward.validate()
        if data.obs is None:
            raise ConfigError("ReplayEnv needs state embeddings: load_replay(..., with_obs=True)")
        if len(rows) == 0:
            raise ConfigError("no replayable questions in this partition")
        self.data, self.rows, self.cfg, self.weights = data, np.asarray(rows), reward, weights
        self.n_experts = data.n_experts
        self.observation_space = gym.spaces.Box(-1.5, 1.5, (data.obs.shape[2],), np.float32)
        self.action_space = gym.spaces.Discrete(self.n_experts)
        self._q = 0
        self._s = S_NONE
        self._t = 0
        self._prev_a = -1
        self._q_prev = 0.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._q = int(self.rows[self.np_random.integers(len(self.rows))])
        self._s, self._t, self._prev_a, self._q_prev = S_NONE, 0, -1, 0.0
        return self.data.obs[self._q, self._s].copy(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        a, cfg, d = int(action), self.cfg, self.data
        reward = 0.0
        if cfg.no_repeat and a == self._prev_a:
            a = (a + 1) % self.n_experts
            reward -= cfg.repeat_penalty
        code = int(d.answer[self._q, self._s, a])
        q = 1.0 if code == int(d.label[self._q]) else 0.0
        cost = float(step_cost(d, self._q, self._s, a, self.weights, cfg.cost_mode))
        if self._t == 0:
            reward += q - cfg.alpha * cost
        else:
            reward += q + cfg.beta * (q - self._q_prev) - cfg.alpha * cost
        self._t += 1
        terminated = q >= cfg.p0
        truncated = not terminated and self._t >= cfg.tmax
        if terminated:
            reward += cfg.gamma
        elif truncated:
            reward -= cfg.gamma
        info = {
            "expert": a,
            "answer": code,
            "latency": float(d.latency[self._q, self._s, a]),
            "cost": cost,
            "is_success": terminated,
        }
        self._s, self._prev_a, self._q_prev = int(NEXT_STATE[code]), a, q
        return d.obs[self._q, self._s].copy(), float(reward), terminated, truncated, info
