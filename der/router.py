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


@dataclass
class Router:
    """A PPO policy with its metadata; :meth:`act` picks experts for a batch of observations."""

    model: Any
    meta: dict[str, Any]

    @property
    def experts(self) -> list[str]:
        return list(self.meta["experts"])

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic expert indices for observations of shape (n, dim)."""
        actions, _ = self.model.predict(obs, deterministic=True)
        return np.asarray(actions, dtype=np.int64).reshape(-1)

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
