"""A trained router: the PPO policy plus what it was trained on, saved side by side.

``router.zip`` is the stable-baselines3 model; ``router.json`` holds the training config, the
expert order (the action space), the cost calibration and the fingerprint of the cache it was
trained on, so a router is never silently applied to other experts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from der.errors import ConfigError
from der.features import ObsSpec


@dataclass
class Router:
    """A PPO policy with its metadata; :meth:`act` picks experts for a batch of observations."""

    model: Any
    meta: dict[str, Any]

    @property
    def experts(self) -> list[str]:
        return list(self.meta["experts"])

    @property
    def obs_spec(self) -> ObsSpec:
        m = self.meta
        return ObsSpec(m.get("features", "reference"), len(m["experts"]), int(m["tmax"]))

    @property
    def can_stop(self) -> bool:
        """Whether the action space has STOP (index = number of experts)."""
        return self.meta.get("mode") == "deployable"

    def act(self, obs: np.ndarray, allow_stop: bool = True) -> np.ndarray:
        """Deterministic actions for observations of shape (n, dim); with ``allow_stop=False`` a
        STOP-capable router takes its most probable expert instead of STOP."""
        if not (self.can_stop and not allow_stop):
            actions, _ = self.model.predict(obs, deterministic=True)
            return np.asarray(actions, dtype=np.int64).reshape(-1)
        import torch

        with torch.no_grad():
            obs_t, _ = self.model.policy.obs_to_tensor(obs)
            probs = self.model.policy.get_distribution(obs_t).distribution.probs.cpu().numpy()
        return probs[:, : len(self.experts)].argmax(axis=1).astype(np.int64)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save(folder / "router.zip")
        (folder / "router.json").write_text(json.dumps(self.meta, indent=2, default=str))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Router:
        from stable_baselines3 import PPO

        folder = Path(folder)
        if not (folder / "router.zip").exists() or not (folder / "router.json").exists():
            raise ConfigError(f"no trained router in {folder} (expected router.zip and router.json); run `der train`")
        meta = json.loads((folder / "router.json").read_text())
        return cls(PPO.load(folder / "router.zip", device="cpu"), meta)

    def check_experts(self, experts: list[str]) -> None:
        """Refuse to route over experts other than those the router was trained on."""
        if list(experts) != self.experts:
            raise ConfigError(
                f"router was trained on experts {self.experts} (in this order), not {list(experts)}; "
                "retrain it or configure the same experts"
            )
