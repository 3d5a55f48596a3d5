"""Evaluate every baseline and the router from the cache, as array operations over questions.

Two protocols, reported side by side:

- ``gold-stop``: the reference's protocol. A multi-step method stops as soon as its answer equals
  the gold label, and an ``unknown`` answer is scored as "no" (the reference's normalisation).
  Reading the label at inference makes this an oracle: comparable with the reference's numbers,
  not something a deployed router can do.
- ``fixed-budget``: nothing reads the label at inference. A method runs all its steps (tmax for
  multi-step methods, 1 for single-shot) and its last answer counts; ``unknown`` is wrong.

The two ``oracle`` methods read the label under both protocols by definition (upper bounds).
Every method is a picker ``f(t, state, prev_expert) -> expert`` rolled out for all questions at
once; one step costs one array lookup per question.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from der.env import RewardConfig, step_cost
from der.replay import A_NO, A_UNKNOWN, ANSWER_NAMES, NEXT_STATE, S_NONE, ReplayData
from der.router import Router

PROTOCOLS = ("gold-stop", "fixed-budget")
Picker = Callable[[int, np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Rollout:
    """Per-question outcome of one method under one protocol."""

    name: str
    correct: np.ndarray
    calls: np.ndarray
    latency: np.ndarray
    cost: np.ndarray
    picks: np.ndarray
    """expert per step, -1 after the method stopped; for all-expert oracles, -2 ("all")."""
    answers: np.ndarray

    def summary(self) -> dict[str, float | str | int]:
        return {
            "name": self.name,
            "accuracy_mean": float(self.correct.mean()),
            "calls_mean": float(self.calls.mean()),
            "latency_mean": float(self.latency.mean()),
            "cost_mean": float(self.cost.mean()),
            "n": len(self.correct),
        }


def _scored(data: ReplayData, rows: np.ndarray, codes: np.ndarray, protocol: str) -> np.ndarray:
    if protocol == "gold-stop":
        codes = np.where(codes == A_UNKNOWN, A_NO, codes)
    return data.correct(codes, rows)


def rollout(
    data: ReplayData,
    rows: np.ndarray,
    name: str,
    pick: Picker,
    steps: int,
    protocol: str,
    weights: np.ndarray,
    reward: RewardConfig,
    no_repeat: bool,
) -> Rollout:
    """Run ``pick`` for ``steps`` steps on every question of ``rows`` under ``protocol``."""
    n, e = len(rows), data.n_experts
    s = np.full(n, S_NONE, dtype=np.int64)
    prev = np.full(n, -1, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    correct = np.zeros(n, dtype=bool)
    calls = np.zeros(n, dtype=np.int64)
    latency = np.zeros(n)
    cost = np.zeros(n)
    picks = np.full((n, steps), -1, dtype=np.int64)
    answers = np.full((n, steps), -1, dtype=np.int64)
    for t in range(steps):
        a = np.asarray(pick(t, s, prev), dtype=np.int64)
        if no_repeat:
            a = np.where(a == prev, (a + 1) % e, a)
        code = data.answer[rows, s, a].astype(np.int64)
        ok = _scored(data, rows, code, protocol)
        lat = data.latency[rows, s, a]
        c = step_cost(data, rows, s, a, weights, reward.cost_mode)
        calls += active
        latency += np.where(active, lat, 0.0)
        cost += np.where(active, c, 0.0)
        picks[:, t] = np.where(active, a, -1)
        answers[:, t] = np.where(active, code, -1)
        if protocol == "gold-stop":
            correct |= active & ok
            active &= ~ok
        else:
            correct = np.where(active, ok, correct)
        s, prev = NEXT_STATE[code].astype(np.int64), a
    return Rollout(name, correct, calls, latency, cost, picks, answers)


def oracle_rollout(
    data: ReplayData, rows: np.ndarray, name: str, steps: int, protocol: str, weights: np.ndarray, reward: RewardConfig
) -> Rollout:
    """All experts at every step; correct as soon as any expert is (an upper bound: reads the label).

    When none is right, the wrong yes/no answer (if any expert gave one) is handed on.
    """
    n, e = len(rows), data.n_experts
    s = np.full(n, S_NONE, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    correct = np.zeros(n, dtype=bool)
    calls = np.zeros(n, dtype=np.int64)
    latency = np.zeros(n)
    cost = np.zeros(n)
    picks = np.full((n, steps), -1, dtype=np.int64)
    answers = np.full((n, steps), -1, dtype=np.int64)
    all_e = np.arange(e)[None, :]
    for t in range(steps):
        codes = data.answer[rows[:, None], s[:, None], all_e].astype(np.int64)
        ok = _scored(data, rows[:, None].repeat(e, 1), codes, protocol)
        lat = data.latency[rows[:, None], s[:, None], all_e].sum(axis=1)
        c = step_cost(data, rows[:, None], s[:, None], all_e, weights, reward.cost_mode).sum(axis=1)
        calls += active * e
        latency += np.where(active, lat, 0.0)
        cost += np.where(active, c, 0.0)
        picks[:, t] = np.where(active, -2, -1)
        any_ok = ok.any(axis=1)
        wrong_given = np.where((codes != A_UNKNOWN) & ~ok, codes, -1).max(axis=1)
        answers[:, t] = np.where(active, np.where(any_ok, data.label[rows].astype(np.int64), wrong_given), -1)
        correct |= active & any_ok
        active &= ~any_ok
        s = np.where(wrong_given >= 0, NEXT_STATE[np.maximum(wrong_given, 0)], S_NONE).astype(np.int64)
    return Rollout(name, correct, calls, latency, cost, picks, answers)


def methods(
    data: ReplayData, rows: np.ndarray, router: Router | None, seed: int, tmax: int
) -> list[tuple[str, Picker, int, bool]]:
    """(name, picker, steps, no_repeat) for every non-oracle method, named as in the reference."""
    e = data.n_experts
    out: list[tuple[str, Picker, int, bool]] = []
    for i, name in enumerate(data.experts):
        out.append((f"single_shot:{i}:{name}", lambda t, s, p, i=i: np.full(len(s), i), 1, False))
    for i, name in enumerate(data.experts):
        out.append((f"single_multistep:{i}:{name}", lambda t, s, p, i=i: np.full(len(s), i), tmax, False))
    out.append(("static:round_robin_multistep", lambda t, s, p: np.full(len(s), t % e), tmax, False))
    rng = np.random.default_rng(seed)
    out.append(("random_router_multistep", lambda t, s, p: rng.integers(0, e, len(s)), tmax, True))
    if router is not None:
        router.check_experts(data.experts)
        if data.obs is None:
            raise ValueError("evaluating a router needs observations: load_replay(..., with_obs=True)")
        obs = data.obs
        out.append(("DER(PPO_router)_multistep", lambda t, s, p: router.act(obs[rows, s]), tmax, True))
    return out


def evaluate(
    data: ReplayData,
    rows: np.ndarray,
    weights: np.ndarray,
    reward: RewardConfig,
    router: Router | None = None,
    seed: int = 7,
    protocols: tuple[str, ...] = PROTOCOLS,
) -> dict[str, list[Rollout]]:
    """Every method under every protocol on ``rows``; results sorted by accuracy desc, then cost."""
    out: dict[str, list[Rollout]] = {}
    tmax = reward.tmax
    for protocol in protocols:
        results = [
            rollout(data, rows, name, pick, steps, protocol, weights, reward, no_repeat)
            for name, pick, steps, no_repeat in methods(data, rows, router, seed, tmax)
        ]
        results.append(oracle_rollout(data, rows, "oracle:all_experts_pick_best_1step", 1, protocol, weights, reward))
        results.append(
            oracle_rollout(data, rows, "oracle:all_experts_every_step_multistep", tmax, protocol, weights, reward)
        )
        results.sort(key=lambda r: (-r.correct.mean(), r.cost.mean()))
        out[protocol] = results
    return out


def answer_name(code: int) -> str:
    """Name of an answer code (``-1`` for a step not taken)."""
    return ANSWER_NAMES[code] if code >= 0 else ""
