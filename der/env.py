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

``mode="deployable"`` adds a STOP action (index E) and ends an episode only when the router stops
or has asked tmax experts; the label enters the reward only, never the observation or the end of
an episode. Per call: ``beta * (q - q_prev) - alpha * cost`` (a shaping term that telescopes to
the quality of the final answer); on STOP or after tmax calls: ``+gamma`` if the answer held is
correct, else ``-gamma``; STOP before any call: ``-gamma`` (no answer). docs/stop.md explains the
choice and the ablations behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np

from der.errors import ConfigError
from der.features import Features, ObsSpec
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
    mode: Literal["reference", "deployable"] = "reference"
    """reference: the demo's reward, episodes end on a correct answer (gold-stop); deployable: a
    STOP action, episodes end on STOP or after tmax calls (learned-stop)."""
    features: Features = "reference"
    """Observation: reference (embedding only), state (+ answer so far, last expert, step),
    state+confidence (+ the last answer's log-prob confidence)."""

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
    """Gymnasium env over recorded answers; one episode routes one question for up to tmax steps.

    ``step`` reads plain Python lists prepared once in ``__init__`` (quality, cost and next state
    per question, state and expert), which is several times faster than numpy scalar indexing.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, data: ReplayData, rows: np.ndarray, reward: RewardConfig, weights: np.ndarray) -> None:
        reward.validate()
        if data.obs is None:
            raise ConfigError("ReplayEnv needs state embeddings: load_replay(..., with_obs=True)")
        if len(rows) == 0:
            raise ConfigError("no replayable questions in this partition")
        self.data, self.rows, self.cfg, self.weights = data, np.asarray(rows), reward, weights
        self.n_experts = data.n_experts
        self.stop_action = self.n_experts if reward.mode == "deployable" else None
        self.obs_spec = ObsSpec(reward.features, self.n_experts, reward.tmax, data.obs.shape[2])
        self.observation_space = gym.spaces.Box(-1.5, 1.5, (self.obs_spec.dim,), np.float32)
        self.action_space = gym.spaces.Discrete(self.n_experts + (reward.mode == "deployable"))
        codes = data.answer.astype(np.int64)
        e = np.arange(self.n_experts)[None, None, :]
        q_idx = np.arange(len(data.label))[:, None, None]
        s_idx = np.arange(3)[None, :, None]
        self._quality = (codes == data.label[:, None, None].astype(np.int64)).astype(float).tolist()
        self._cost = np.nan_to_num(step_cost(data, q_idx, s_idx, e, weights, reward.cost_mode)).tolist()
        self._next = NEXT_STATE[np.maximum(codes, 0)].tolist()
        self._code = codes.tolist()
        self._latency = np.nan_to_num(data.latency).tolist()
        self._obs = data.obs
        self._q = 0
        self._s = S_NONE
        self._t = 0
        self._prev_a = -1
        self._prev_s = S_NONE
        self._q_prev = 0.0

    def _observe(self) -> np.ndarray:
        if self.obs_spec.features == "reference":
            return self._obs[self._q, self._s].copy()
        one = np.array
        return self.obs_spec.build(
            self.data, one([self._q]), one([self._s]), self._t, one([self._prev_a]), one([self._prev_s])
        )[0]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._q = int(self.rows[self.np_random.integers(len(self.rows))])
        self._s, self._t, self._prev_a, self._prev_s, self._q_prev = S_NONE, 0, -1, S_NONE, 0.0
        return self._observe(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        a, cfg = int(action), self.cfg
        if a == self.stop_action:
            return self._stop()
        qi, s = self._q, self._s
        reward = 0.0
        if cfg.no_repeat and a == self._prev_a and self.n_experts > 1:
            a = (a + 1) % self.n_experts
            reward -= cfg.repeat_penalty
        q = self._quality[qi][s][a]
        cost = self._cost[qi][s][a]
        deployable = self.stop_action is not None
        if self._t == 0 and not deployable:
            reward += q - cfg.alpha * cost
        elif deployable:
            reward += cfg.beta * (q - self._q_prev) - cfg.alpha * cost
        else:
            reward += q + cfg.beta * (q - self._q_prev) - cfg.alpha * cost
        self._t += 1
        if deployable:
            # the label decides the reward, never when the episode ends
            terminated, truncated = self._t >= cfg.tmax, False
            if terminated:
                reward += cfg.gamma if q >= 1.0 else -cfg.gamma
        else:
            terminated = q >= cfg.p0
            truncated = not terminated and self._t >= cfg.tmax
            if terminated:
                reward += cfg.gamma
            elif truncated:
                reward -= cfg.gamma
        info = {
            "expert": a,
            "answer": self._code[qi][s][a],
            "latency": self._latency[qi][s][a],
            "cost": cost,
            "is_success": q >= 1.0 if deployable else terminated,
        }
        self._prev_s, self._s, self._prev_a, self._q_prev = s, self._next[qi][s][a], a, q
        return self._observe(), reward, terminated, truncated, info

    def _stop(self) -> tuple[np.ndarray, float, bool, bool, dict]:
        """STOP: the answer held so far is final (none before the first call)."""
        correct = self._t > 0 and self._q_prev >= 1.0
        reward = self.cfg.gamma if correct else -self.cfg.gamma
        info = {"expert": None, "stop": True, "is_success": correct}
        return self._observe(), reward, True, False, info
