"""Evaluate every baseline and the routers from the cache, as array operations over questions.

Three protocols, reported side by side:

- ``gold-stop``: the reference's protocol. A multi-step method stops as soon as its answer equals
  the gold label, and an ``unknown`` answer is scored as "no" (the reference's normalisation).
  Reading the label at inference makes this an oracle: comparable with the reference's numbers,
  not something a deployed router can do.
- ``fixed-budget``: nothing reads the label. A method runs all its steps (tmax for multi-step
  methods, 1 for single-shot), ignoring any stopping rule of its own; its last answer counts and
  ``unknown`` is wrong.
- ``learned-stop``: nothing reads the label. A method stops by its own rule (the router's STOP
  action, two consecutive experts agreeing, a confident expert) or after its steps; its last
  answer counts.

The two ``oracle`` methods read the label under every protocol by definition (upper bounds).
Every other method is a picker: given the rollout so far it returns, for every question at
once, the next expert or STOP; one step is one array lookup per question.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from der.env import RewardConfig, step_cost
from der.errors import WarehouseError
from der.replay import A_NO, A_UNKNOWN, ANSWER_NAMES, NEXT_STATE, S_NONE, ReplayData
from der.router import Router

PROTOCOLS = ("gold-stop", "fixed-budget", "learned-stop")
STOP = -3  # a picker's "stop now" (routers' STOP index is mapped to it)


@dataclass
class Context:
    """What a picker may look at: the rollout so far, nothing about the label."""

    data: ReplayData
    rows: np.ndarray
    t: int
    s: np.ndarray
    """state (answer handed on) before this step"""
    prev_a: np.ndarray
    """expert asked at the previous step (-1 at the first)"""
    prev_s: np.ndarray
    """state the previous expert was asked in"""
    answers: np.ndarray
    """answer codes so far, (n, steps), -1 where not asked"""
    allow_stop: bool


Picker = Callable[[Context], np.ndarray]


@dataclass
class Method:
    """A routing method: its picker, most steps, and whether a repeated expert is replaced."""

    name: str
    pick: Picker
    steps: int
    no_repeat: bool = False


@dataclass
class Rollout:
    """Per-question outcome of one method under one protocol."""

    name: str
    correct: np.ndarray
    calls: np.ndarray
    latency: np.ndarray
    cost: np.ndarray
    picks: np.ndarray
    """expert per step, -1 where the method had stopped; -2 for "all experts" (oracles)."""
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

    def head(self, k: int) -> Rollout:
        """The first ``k`` questions."""
        return Rollout(
            self.name,
            self.correct[:k],
            self.calls[:k],
            self.latency[:k],
            self.cost[:k],
            self.picks[:k],
            self.answers[:k],
        )


def scored(data: ReplayData, rows: np.ndarray, codes: np.ndarray, protocol: str) -> np.ndarray:
    """Whether answer codes are correct under ``protocol`` (gold-stop scores unknown as "no")."""
    if protocol == "gold-stop":
        codes = np.where(codes == A_UNKNOWN, A_NO, codes)
    return data.correct(codes, rows)


def rollout(
    data: ReplayData,
    rows: np.ndarray,
    method: Method,
    protocol: str,
    weights: np.ndarray,
    reward: RewardConfig,
) -> Rollout:
    """Run ``method`` on every question of ``rows`` under ``protocol``."""
    n, e, steps = len(rows), data.n_experts, method.steps
    s = np.full(n, S_NONE, dtype=np.int64)
    prev = np.full(n, -1, dtype=np.int64)
    prev_s = np.full(n, S_NONE, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    correct = np.zeros(n, dtype=bool)
    calls = np.zeros(n, dtype=np.int64)
    latency = np.zeros(n)
    cost = np.zeros(n)
    picks = np.full((n, steps), -1, dtype=np.int64)
    answers = np.full((n, steps), -1, dtype=np.int64)
    for t in range(steps):
        ctx = Context(data, rows, t, s, prev, prev_s, answers, protocol == "learned-stop")
        a = np.asarray(method.pick(ctx), dtype=np.int64)
        stopping = active & (a == STOP)
        active &= ~stopping
        if not active.any():
            break
        a = np.where(a == STOP, 0, a)
        if method.no_repeat:
            a = no_repeat(a, prev, e)
        code = data.answer[rows, s, a].astype(np.int64)
        if (code[active] < 0).any():
            raise WarehouseError(
                f"{method.name}: a chain needs a call the replay arrays lack; load them with tmax >= {steps}"
            )
        ok = scored(data, rows, code, protocol)
        calls += active
        latency += np.where(active, data.latency[rows, s, a], 0.0)
        cost += np.where(active, step_cost(data, rows, s, a, weights, reward.cost_mode), 0.0)
        picks[:, t] = np.where(active, a, -1)
        answers[:, t] = np.where(active, code, -1)
        if protocol == "gold-stop":
            correct |= active & ok
            active &= ~ok
        else:
            correct = np.where(active, ok, correct)
        nxt = NEXT_STATE[code].astype(np.int64)
        prev_s = np.where(active, s, prev_s)
        s, prev = np.where(active, nxt, s), np.where(active, a, prev)
    return Rollout(method.name, correct, calls, latency, cost, picks, answers)


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
        ok = scored(data, rows[:, None].repeat(e, 1), codes, protocol)
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


def no_repeat(a: np.ndarray, prev: np.ndarray, n_experts: int) -> np.ndarray:
    """The reference's no-repeat rule: asking the previous expert again asks the next one instead
    (a no-op with a single expert, who has no other to ask)."""
    if n_experts == 1:
        return a
    return np.where(a == prev, (a + 1) % n_experts, a)


def _fixed(i: int) -> Picker:
    return lambda ctx: np.full(len(ctx.rows), i)


def cheapest_first(weights: np.ndarray) -> np.ndarray:
    """Experts by increasing median latency (largest cost weight first)."""
    return np.argsort(-weights, kind="stable")


def agreement_stop(order: np.ndarray) -> Picker:
    """Ask experts cheapest first; stop once two consecutive answers agree (yes/no)."""

    def pick(ctx: Context) -> np.ndarray:
        a = np.full(len(ctx.rows), order[ctx.t % len(order)])
        if ctx.allow_stop and ctx.t >= 2:
            last, before = ctx.answers[:, ctx.t - 1], ctx.answers[:, ctx.t - 2]
            a = np.where((last == before) & (last >= 0) & (last != A_UNKNOWN), STOP, a)
        return a

    return pick


def confidence_stop(order: np.ndarray, threshold: float) -> Picker:
    """Ask experts cheapest first; stop once the last answer's confidence |2 P(yes) - 1| reaches
    ``threshold`` (experts without log-probabilities are never confident)."""

    def pick(ctx: Context) -> np.ndarray:
        a = np.full(len(ctx.rows), order[ctx.t % len(order)])
        if ctx.allow_stop and ctx.t >= 1:
            asked = ctx.prev_a >= 0
            p = np.full(len(ctx.rows), np.nan)
            p[asked] = ctx.data.p_yes[ctx.rows[asked], ctx.prev_s[asked], ctx.prev_a[asked]]
            conf = np.nan_to_num(np.abs(2 * p - 1), nan=-1.0)
            answered = ctx.answers[:, ctx.t - 1]
            a = np.where((conf >= threshold) & (answered >= 0) & (answered != A_UNKNOWN), STOP, a)
        return a

    return pick


def router_picker(router: Router) -> Picker:
    """The router's deterministic choice; its STOP index becomes STOP."""
    spec = router.obs_spec
    stop_index = len(router.experts)

    def pick(ctx: Context) -> np.ndarray:
        obs = spec.build(ctx.data, ctx.rows, ctx.s, ctx.t, ctx.prev_a, ctx.prev_s)
        a = router.act(obs, allow_stop=ctx.allow_stop)
        if ctx.t == 0:
            # STOP before any expert leaves no answer: a deployed router asks at least once
            a = np.where(a == stop_index, router.act(obs, allow_stop=False), a)
        return np.where(a == stop_index, STOP, a)

    return pick


THRESHOLDS = np.round(np.arange(0.0, 1.0001, 0.05), 2)


def tune_confidence(data: ReplayData, rows: np.ndarray, weights: np.ndarray, reward: RewardConfig) -> float:
    """The confidence threshold that maximises accuracy - alpha x mean cost on ``rows`` (train)."""
    order = cheapest_first(weights)
    best, best_score = 1.0, -np.inf
    for th in THRESHOLDS:
        r = rollout(data, rows, Method("c", confidence_stop(order, th), reward.tmax), "learned-stop", weights, reward)
        score = r.correct.mean() - reward.alpha * r.cost.mean()
        if score > best_score + 1e-12:
            best, best_score = float(th), score
    return best


def methods(
    data: ReplayData,
    weights: np.ndarray,
    tmax: int,
    seed: int,
    routers: dict[str, Router] | None = None,
    confidence_threshold: float | None = None,
) -> list[Method]:
    """Every non-oracle method, named as in the reference where it has one."""
    e = data.n_experts
    out = [Method(f"single_shot:{i}:{name}", _fixed(i), 1) for i, name in enumerate(data.experts)]
    out += [Method(f"single_multistep:{i}:{name}", _fixed(i), tmax) for i, name in enumerate(data.experts)]
    out.append(Method("static:round_robin_multistep", lambda ctx: np.full(len(ctx.rows), ctx.t % e), tmax))
    rng = np.random.default_rng(seed)
    out.append(Method("random_router_multistep", lambda ctx: rng.integers(0, e, len(ctx.rows)), tmax, True))
    order = cheapest_first(weights)
    out.append(Method("agreement_stop_multistep", agreement_stop(order), tmax))
    if confidence_threshold is not None and not np.isnan(data.p_yes).all():
        out.append(
            Method(
                f"confidence_stop_multistep(threshold={confidence_threshold:g})",
                confidence_stop(order, confidence_threshold),
                tmax,
            )
        )
    for name, router in (routers or {}).items():
        router.check_experts(data.experts)
        out.append(Method(name, router_picker(router), tmax, True))
    return out


def evaluate(
    data: ReplayData,
    rows: np.ndarray,
    weights: np.ndarray,
    reward: RewardConfig,
    routers: dict[str, Router] | None = None,
    seed: int = 7,
    protocols: tuple[str, ...] = PROTOCOLS,
    confidence_threshold: float | None = None,
) -> dict[str, list[Rollout]]:
    """Every method under every protocol on ``rows``; results sorted by accuracy desc, then cost."""
    out: dict[str, list[Rollout]] = {}
    tmax = reward.tmax
    for protocol in protocols:
        results = [
            rollout(data, rows, m, protocol, weights, reward)
            for m in methods(data, weights, tmax, seed, routers, confidence_threshold)
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
