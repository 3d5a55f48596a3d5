"""Deployable routing: the STOP action, label-free protocols, stopping baselines, der ask."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from stable_baselines3.common.env_checker import check_env

from der.env import ReplayEnv, RewardConfig, cost_weights
from der.errors import WarehouseError
from der.evaluate import (
    PROTOCOLS,
    THRESHOLDS,
    Method,
    agreement_stop,
    cheapest_first,
    confidence_stop,
    evaluate,
    rollout,
    tune_confidence,
)
from der.features import FEATURES, ObsSpec
from der.replay import ReplayData, load_replay
from der.synthetic import make_warehouse
from der.train import TrainConfig, train_router


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn")
    make_warehouse(root, n_questions=60)
    return load_replay(root)


def _env(data, **kw):
    rows = data.indices("train")
    return ReplayEnv(data, rows, RewardConfig(**kw), cost_weights(data, rows))


@pytest.mark.parametrize("features", FEATURES)
def test_deployable_env_passes_the_checker(syn, features):
    env = _env(syn, mode="deployable", features=features)
    assert env.action_space.n == syn.n_experts + 1
    assert env.observation_space.shape == (ObsSpec(features, syn.n_experts, 3).dim,)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    assert [str(w.message) for w in caught] == []


def test_stop_before_any_call_is_penalised_and_ends_the_episode(syn):
    env = _env(syn, mode="deployable", gamma=0.6)
    env.reset(seed=0)
    _, r, term, trunc, info = env.step(syn.n_experts)
    assert (r, term, trunc, info["is_success"]) == (-0.6, True, False, False)


def test_deployable_episode_does_not_end_on_a_correct_answer(syn):
    env = _env(syn, mode="deployable", gamma=0.6, alpha=0.0, beta=0.0)
    for seed in range(50):
        env.reset(seed=seed)
        q = env._q
        if syn.answer[q, 0, 0] == syn.label[q]:
            _, r, term, _, _ = env.step(0)
            assert not term and r == 0.0  # no label-driven termination
            _, r, term, _, info = env.step(syn.n_experts)  # STOP with the correct answer held
            assert term and r == 0.6 and info["is_success"]
            return
    pytest.fail("no question answered correctly by expert 0")


def test_label_free_protocols_never_look_at_the_label(syn):
    rows = syn.indices("eval")
    w = cost_weights(syn, syn.indices("train"))
    router = train_router(
        syn, TrainConfig(steps=256, reward=RewardConfig(mode="deployable", features="state+confidence"))
    ).router
    flipped = ReplayData(**{**syn.__dict__, "label": ~syn.label})
    a = evaluate(syn, rows, w, RewardConfig(), {"stop": router}, confidence_threshold=0.5)
    b = evaluate(flipped, rows, w, RewardConfig(), {"stop": router}, confidence_threshold=0.5)
    for protocol in ("fixed-budget", "learned-stop"):
        for ra in a[protocol]:
            if ra.name.startswith("oracle"):
                continue
            rb = next(r for r in b[protocol] if r.name == ra.name)
            assert np.array_equal(ra.picks, rb.picks), (protocol, ra.name)
            assert np.array_equal(ra.answers, rb.answers), (protocol, ra.name)
    gold = {r.name: r for r in a["gold-stop"]}
    assert set(gold) == {r.name for r in a["learned-stop"]}
    assert set(a) == set(PROTOCOLS)


def _tiny(answers: list[list[int]], p_yes: list[list[float]]) -> ReplayData:
    """One question, 2 experts; answers[state][expert]."""
    a = np.array([answers], dtype=np.int8)
    return ReplayData(
        ["q"],
        ["e0", "e1"],
        np.array(["eval"]),
        np.array([True]),
        a,
        np.ones((1, 3, 2), np.float32),
        np.array([p_yes], np.float32),
        np.ones((1, 3, 2), np.float32),
        np.zeros((1, 3, 384), np.float32),
        "t",
        3,
    )


def test_agreement_stop_stops_when_two_consecutive_answers_agree():
    # e0 first says yes; e1 handed yes says yes -> agree -> stop after 2 calls
    data = _tiny([[1, 0], [0, 1], [1, 1]], [[0.9, 0.1]] * 3)
    r = rollout(
        data,
        np.array([0]),
        Method("a", agreement_stop(np.array([0, 1])), 3),
        "learned-stop",
        np.ones(2),
        RewardConfig(),
    )
    assert r.calls.tolist() == [2] and r.correct.tolist() == [True]
    fixed = rollout(
        data,
        np.array([0]),
        Method("a", agreement_stop(np.array([0, 1])), 3),
        "fixed-budget",
        np.ones(2),
        RewardConfig(),
    )
    assert fixed.calls.tolist() == [3]


def test_confidence_stop_uses_the_experts_log_probabilities():
    data = _tiny([[1, 1], [0, 1], [1, 1]], [[0.95, 0.5], [0.5, 0.5], [0.5, 0.5]])
    r = rollout(
        data,
        np.array([0]),
        Method("c", confidence_stop(np.array([0, 1]), 0.8), 3),
        "learned-stop",
        np.ones(2),
        RewardConfig(),
    )
    assert r.calls.tolist() == [1]
    no_logprobs = _tiny([[1, 1], [0, 1], [1, 1]], [[np.nan, np.nan]] * 3)
    r = rollout(
        no_logprobs,
        np.array([0]),
        Method("c", confidence_stop(np.array([0, 1]), 0.8), 3),
        "learned-stop",
        np.ones(2),
        RewardConfig(),
    )
    assert r.calls.tolist() == [3]


def test_confidence_threshold_is_the_best_on_train(syn):
    train, w, reward = syn.indices("train"), cost_weights(syn, syn.indices("train")), RewardConfig()
    th = tune_confidence(syn, train, w, reward)
    order = cheapest_first(w)

    def score(threshold: float) -> float:
        r = rollout(syn, train, Method("c", confidence_stop(order, threshold), 3), "learned-stop", w, reward)
        return r.correct.mean() - reward.alpha * r.cost.mean()

    assert all(score(th) >= score(other) - 1e-12 for other in THRESHOLDS)


def test_gold_stop_stops_on_the_label_only():
    # e0 says yes (wrong: label no), e1 handed yes says yes again: agreement would stop, the label does not
    data = _tiny([[1, 1], [1, 1], [0, 0]], [[0.9, 0.9]] * 3)
    data.label[:] = False
    r = rollout(
        data, np.array([0]), Method("a", agreement_stop(np.array([0, 1])), 3), "gold-stop", np.ones(2), RewardConfig()
    )
    assert r.calls.tolist() == [3] and not r.correct[0]


def test_confidence_stop_never_stops_on_an_unknown_answer():
    data = _tiny([[2, 2], [2, 2], [2, 2]], [[0.99, 0.99]] * 3)
    r = rollout(
        data,
        np.array([0]),
        Method("c", confidence_stop(np.array([0, 1]), 0.5), 3),
        "learned-stop",
        np.ones(2),
        RewardConfig(),
    )
    assert r.calls.tolist() == [3]


def test_a_chain_beyond_the_recorded_depth_is_refused_not_invented(syn):
    shallow = ReplayData(**{**syn.__dict__, "answer": syn.answer.copy()})
    shallow.answer[:, 1:, :] = -1  # as if recorded with tmax 1
    with pytest.raises(WarehouseError, match="lack"):
        rollout(
            shallow,
            shallow.indices("eval"),
            Method("s", lambda ctx: np.zeros(len(ctx.rows), int), 3),
            "fixed-budget",
            cost_weights(syn, syn.indices("train")),
            RewardConfig(),
        )


def test_with_one_expert_repeating_it_is_not_penalised(tmp_path):
    make_warehouse(tmp_path, n_questions=15, accuracies=(0.6,), latencies_s=(1.0,))
    data = load_replay(tmp_path)
    env = _env(data, mode="deployable", alpha=0.0, beta=0.0, gamma=0.0)
    env.reset(seed=0)
    env.step(0)
    _, r, *_ = env.step(0)
    assert r == 0.0
