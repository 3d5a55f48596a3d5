"""Replay equals a live run of the same chain; the env passes gymnasium's checks."""

import itertools
import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env

from der.env import ReplayEnv, RewardConfig, cost_weights
from der.experts import make_expert
from der.live import run_chain
from der.prefetch import prefetch, question_row
from der.prompts import get_template
from der.replay import ANSWER_NAMES, NEXT_STATE, STATES, load_replay
from der.store import ShardWriter, write_shard
from der.synthetic import make_warehouse

TEMPLATE = get_template("ref-v1")


def test_replaying_any_chain_gives_what_a_live_run_gives(tmp_path, make_specs, questions):
    from tests.loopback import LoopbackExpertServer

    with LoopbackExpertServer(["alpha:1b", "beta:3b", "gamma:7b"], delay_s={"beta:3b": 0.02}) as srv:
        specs = make_specs(srv.base)
        qs = questions[:2]
        prefetch(qs, specs, tmp_path / "wh", TEMPLATE, tmax=3)
        data = load_replay(tmp_path / "wh", [s.name for s in specs], tmax=3, with_obs=False)
        experts = {s.name: make_expert(s) for s in specs}
        live_wh = tmp_path / "live"
        write_shard(live_wh, "questions", [question_row(q) for q in qs])
        writer = ShardWriter(live_wh, "calls")
        first_latency: dict[tuple[str, str, str], float] = {}
        for q in qs:
            row = data.question_ids.index(q.question_id)
            for chain in itertools.product(range(3), repeat=3):
                steps = run_chain(q, experts, lambda t, _s, chain=chain: specs[chain[t]].name, TEMPLATE, 3, writer)
                s = 0
                for t, a in enumerate(chain):
                    code = int(data.answer[row, s, a])
                    assert steps[t].answer == ANSWER_NAMES[code]
                    assert steps[t].handed == STATES[s]
                    first_latency.setdefault((q.question_id, STATES[s], specs[a].name), steps[t].latency_s)
                    s = int(NEXT_STATE[code])
        writer.flush()
        # the live calls, recorded, replay to the very latencies they were measured with
        live = load_replay(live_wh, [s.name for s in specs], tmax=3, with_obs=False)
    assert np.array_equal(live.answer, data.answer)
    for (qid, state, name), latency in first_latency.items():
        got = live.latency[live.question_ids.index(qid), STATES.index(state), live.experts.index(name)]
        assert got == pytest.approx(latency, rel=1e-6)


def test_failed_calls_never_reach_the_replay_arrays(tmp_path, make_specs, questions):
    from tests.loopback import LoopbackExpertServer

    with LoopbackExpertServer(["alpha:1b"], schedule=["error200"]) as srv:
        prefetch(questions[:3], make_specs(srv.base, models=["alpha:1b"]), tmp_path, TEMPLATE, tmax=1)
    data = load_replay(tmp_path, tmax=1, with_obs=False)
    assert len(data.incomplete) == 1 and len(data.question_ids) == 2
    assert (data.answer[:, 0, :] >= 0).all()


@pytest.fixture
def syn(tmp_path):
    make_warehouse(tmp_path, n_questions=45)
    return load_replay(tmp_path)


def test_replay_env_passes_the_checkers(syn):
    rows = syn.indices("train")
    env = ReplayEnv(syn, rows, RewardConfig(), cost_weights(syn, rows))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    assert [str(w.message) for w in caught] == []
    gym_check_env(env, skip_render_check=True)


def test_reward_is_the_reference_formula(syn):
    rows = syn.indices("train")
    cfg = RewardConfig(alpha=0.2, beta=0.8, gamma=0.6)
    w = cost_weights(syn, rows)
    env = ReplayEnv(syn, rows, cfg, w)
    env.reset(seed=3)
    q = env._q
    label = int(syn.label[q])
    code0 = int(syn.answer[q, 0, 0])
    q0 = float(code0 == label)
    cost0 = syn.latency[q, 0, 0] * w[0]
    _, r0, term, trunc, _info = env.step(0)
    expect = q0 - 0.2 * cost0 + (0.6 if q0 == 1.0 else 0.0)
    assert r0 == pytest.approx(expect, rel=1e-5)
    assert term == (q0 == 1.0) and not trunc
    if term:
        return
    s1 = int(NEXT_STATE[code0])
    _, r1, *_ = env.step(0)  # repeated: replaced by expert 1, with the 0.05 penalty
    code1 = int(syn.answer[q, s1, 1])
    q1 = float(code1 == label)
    cost1 = syn.latency[q, s1, 1] * w[1]
    expect1 = -0.05 + q1 + 0.8 * (q1 - q0) - 0.2 * cost1 + (0.6 if q1 == 1.0 else 0.0)
    assert r1 == pytest.approx(expect1, rel=1e-5)


def test_episode_truncates_at_tmax_with_the_penalty(syn):
    rows = syn.indices("train")
    env = ReplayEnv(syn, rows, RewardConfig(tmax=2, p0=1.0), cost_weights(syn, rows))
    for seed in range(200):
        env.reset(seed=seed)
        q = env._q
        if (
            syn.answer[q, 0, 0] != syn.label[q]
            and syn.answer[q, int(NEXT_STATE[syn.answer[q, 0, 0]]), 1] != syn.label[q]
        ):
            env.step(0)
            _, _, term, trunc, _ = env.step(1)
            assert trunc and not term
            return
    pytest.fail("no question where both experts are wrong")


def test_cost_calibration_is_the_median_first_step_latency(syn):
    rows = syn.indices("train")
    w = cost_weights(syn, rows)
    assert np.allclose(1.0 / w, np.median(syn.latency[rows, 0, :], axis=0), rtol=1e-6)
