"""Train a PPO router on the replay environment (stable-baselines3, reference hyperparameters).

One typed config, :class:`TrainConfig`; ``der train`` exposes it on the command line.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from der.env import ReplayEnv, RewardConfig, cost_weights
from der.errors import ConfigError
from der.replay import ReplayData
from der.router import Router


@dataclass
class PPOConfig:
    """PPO hyperparameters (the reference's defaults)."""

    n_steps: int = 128
    batch_size: int = 64
    learning_rate: float = 3e-4
    ppo_gamma: float = 0.95
    """Discount factor of PPO (the reference's PPO gamma; not the reward's gamma bonus)."""
    ent_coef: float = 0.01

    def validate(self) -> None:
        """Reject values stable-baselines3 or torch would fail on, with what to change."""
        if self.n_steps < 2 or self.batch_size < 2:
            raise ConfigError(
                f"n_steps and batch_size must be at least 2 (got {self.n_steps}, {self.batch_size}); "
                "PPO normalises advantages over a batch. The reference uses 128 and 64"
            )
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0 (got {self.learning_rate}); the reference uses 3e-4")
        if not 0 < self.ppo_gamma <= 1:
            raise ConfigError(f"ppo_gamma must be in (0, 1] (got {self.ppo_gamma}); the reference uses 0.95")
        if self.ent_coef < 0:
            raise ConfigError(f"ent_coef must be >= 0 (got {self.ent_coef}); the reference uses 0.01")


@dataclass
class TrainConfig:
    """Training settings; defaults are the reference demo's."""

    steps: int = 3000
    """PPO environment steps (the reference's ppo_steps)."""
    seed: int = 7
    torch_threads: int = 1
    """Torch threads; the policy is a small MLP, where one thread beats two (docs/benchmarks.md)."""
    train_limit: int | None = None
    """Use at most this many train-partition questions (None: every recorded one)."""
    reward: RewardConfig = field(default_factory=RewardConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)

    def validate(self) -> None:
        """Reject settings that cannot work, before any data is loaded."""
        if self.steps < 1:
            raise ConfigError(f"steps must be >= 1 (got {self.steps})")
        if self.torch_threads < 1:
            raise ConfigError(f"torch_threads must be >= 1 (got {self.torch_threads})")
        if self.train_limit is not None and self.train_limit < 1:
            raise ConfigError(f"train_limit must be >= 1 (got {self.train_limit}); omit it to use every question")
        self.reward.validate()
        self.ppo.validate()


@dataclass
class TrainResult:
    """The router, how long training took, and the learning curve (per finished episode)."""

    router: Router
    train_time_sec: float
    curve: dict[str, list[float]]


def train_rows(data: ReplayData, limit: int | None) -> np.ndarray:
    """Train-partition rows, cut to ``limit`` in a fixed order."""
    rows = data.indices("train")
    if len(rows) == 0:
        raise ConfigError("no replayable questions in the train partition; record more questions")
    return rows if limit is None else rows[:limit]


def train_router(data: ReplayData, cfg: TrainConfig, progress: bool = False) -> TrainResult:
    """Train PPO on ``data``'s train partition and return the router with its metadata."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.monitor import Monitor

    cfg.validate()
    torch.set_num_threads(cfg.torch_threads)
    torch.manual_seed(cfg.seed)
    rows = train_rows(data, cfg.train_limit)
    weights = cost_weights(data, rows)
    env = Monitor(ReplayEnv(data, rows, cfg.reward, weights), info_keywords=("is_success",))
    env.reset(seed=cfg.seed)
    curve: dict[str, list[float]] = {"step": [], "reward": [], "correct": [], "calls": []}

    class Curve(BaseCallback):
        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                ep = info.get("episode")
                if ep:
                    curve["step"].append(float(self.num_timesteps))
                    curve["reward"].append(float(ep["r"]))
                    curve["calls"].append(float(ep["l"]))
                    curve["correct"].append(float(info.get("is_success", 0.0)))
            return True

    p = cfg.ppo
    model = PPO(
        "MlpPolicy",
        env,
        n_steps=p.n_steps,
        batch_size=p.batch_size,
        learning_rate=p.learning_rate,
        gamma=p.ppo_gamma,
        ent_coef=p.ent_coef,
        seed=cfg.seed,
        device="cpu",
        verbose=0,
    )
    t0 = time.perf_counter()
    model.learn(total_timesteps=cfg.steps, callback=Curve(), progress_bar=progress)
    train_time = time.perf_counter() - t0
    meta: dict[str, Any] = {
        "experts": data.experts,
        "cache_fingerprint": data.fingerprint,
        "tmax": cfg.reward.tmax,
        "cost_weights": weights.tolist(),
        "median_latency_sec": (1.0 / weights).tolist(),
        "train_questions": len(rows),
        "config": asdict(cfg),
        "features": cfg.reward.features,
        "mode": cfg.reward.mode,
        "observation": f"all-MiniLM-L6-v2 of 'Q: <question>\\nA: <answer so far>' ({cfg.reward.features})",
        "train_time_sec": train_time,
    }
    return TrainResult(Router(model, meta), train_time, curve)
