"""Prefetch: content-addressed dedup, resumability, failures recorded as failures."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from der.config import load_experts
from der.data import load_questions
from der.errors import ConfigError
from der.prefetch import TaskMaker, make_task, prefetch
from der.prompts import get_template
from der.store import list_shards
from der.warehouse import Warehouse
from tests.conftest import FIXTURE_WAREHOUSE
from tests.loopback import LoopbackExpertServer

TEMPLATE = get_template("ref-v1")


def _calls(root):
    with Warehouse(root) as wh:
        return wh.query_rows("select question_id, expert, prev_answer, status, answer from calls")


@pytest.mark.parametrize("tmax", [1, 2, 3, 5])
def test_every_chain_costs_at_most_experts_x_3_calls(tmp_path, server, make_specs, questions, tmax):
    specs = make_specs(server.base)
    qs = questions[:6]
    stats = prefetch(qs, specs, tmp_path, TEMPLATE, tmax=tmax)
    e = len(specs)
    assert stats.failed == 0
    assert stats.asked == sum(server.hits.values())
    assert stats.asked <= len(qs) * e * (1 if tmax == 1 else 3)
    if tmax == 1:
        assert stats.asked == len(qs) * e
    naive = sum(e**d for d in range(1, tmax + 1))
    with Warehouse(tmp_path, tmax=tmax) as wh:
        per_q = wh.query_rows("select question_id, count(*) from chains group by 1")
        assert {n for _, n in per_q} == {naive}  # every chain up to tmax is covered...
        assert wh.data_tests() == dict.fromkeys(wh.data_tests(), 0)
    assert len(server.prompts) == len(set(server.prompts))  # ...and no prompt was ever asked twice


def test_rerun_asks_nothing_and_a_deeper_run_only_what_is_new(tmp_path, server, make_specs, questions):
    specs = make_specs(server.base)
    prefetch(questions[:4], specs, tmp_path, TEMPLATE, tmax=1)
    first = sum(server.hits.values())
    again = prefetch(questions[:4], specs, tmp_path, TEMPLATE, tmax=1)
    assert again.asked == 0 and again.cached == first and sum(server.hits.values()) == first
    deeper = prefetch(questions[:4], specs, tmp_path, TEMPLATE, tmax=3)
    assert deeper.cached == first and deeper.asked == sum(server.hits.values()) - first
    assert len(server.prompts) == len(set(server.prompts))


def test_failed_calls_are_rows_not_answers_and_are_asked_again(tmp_path, make_specs, questions):
    with LoopbackExpertServer(["alpha:1b"], schedule=["error200", "empty", "load"]) as srv:
        specs = make_specs(srv.base, models=["alpha:1b"])
        stats = prefetch(questions[:5], specs, tmp_path, TEMPLATE, tmax=1)
        assert stats.failed == 3 and stats.ok == 2
        rows = _calls(tmp_path)
        assert sorted(r[3] for r in rows) == ["failed"] * 3 + ["ok"] * 2
        assert all(r[4] is None for r in rows if r[3] == "failed")
        again = prefetch(questions[:5], specs, tmp_path, TEMPLATE, tmax=1)
        assert again.asked == 3 and again.ok == 3
    with Warehouse(tmp_path) as wh:
        assert wh.query_rows("select count(*) from stg_call_attempts") == [(8,)]
        assert wh.query_rows("select status, count(*) from calls group by 1") == [("ok", 5)]


def test_one_name_cannot_mean_two_models(tmp_path, server, make_specs, questions):
    specs = make_specs(server.base)
    prefetch(questions[:1], specs, tmp_path, TEMPLATE, tmax=1)
    specs[0].options.num_predict = 99
    with pytest.raises(ConfigError, match=r"already recorded .* other settings"):
        prefetch(questions[:1], specs, tmp_path, TEMPLATE, tmax=1)


def test_a_renamed_or_doubled_expert_is_refused(tmp_path, server, make_specs, questions):
    specs = make_specs(server.base)
    prefetch(questions[:1], specs, tmp_path, TEMPLATE, tmax=1)
    specs[0].name = "renamed"
    with pytest.raises(ConfigError, match="keep the name 'alpha'"):
        prefetch(questions[:1], specs, tmp_path, TEMPLATE, tmax=1)
    twins = make_specs(server.base)
    twins[1].model = twins[0].model
    with pytest.raises(ConfigError, match="same model with the same settings"):
        prefetch(questions[:1], twins, tmp_path / "other", TEMPLATE, tmax=1)


def test_bad_settings_fail_before_any_call(tmp_path, server, make_specs, questions):
    with pytest.raises(ConfigError, match="tmax must be at least 1"):
        prefetch(questions[:1], make_specs(server.base), tmp_path, TEMPLATE, tmax=0)
    assert sum(server.hits.values()) == 0


def test_killed_prefetch_resumes_without_corruption_or_duplicates(tmp_path, questions):
    """SIGKILL a real `der prefetch` process mid-run, then re-run it to completion."""
    root = tmp_path / "wh"
    cfg = tmp_path / "experts.toml"
    with LoopbackExpertServer(["alpha:1b", "beta:3b"], delay_s=0.05) as srv:
        cfg.write_text(
            f"[defaults]\nbackend = 'ollama'\nbase_url = '{srv.base}'\n"
            "[[experts]]\nname = 'alpha'\nmodel = 'alpha:1b'\n"
            "[[experts]]\nname = 'beta'\nmodel = 'beta:3b'\n"
        )
        cmd = [
            sys.executable,
            "-m",
            "der.cli",
            "prefetch",
            "--experts",
            str(cfg),
            "--warehouse",
            str(root),
            "--limit",
            "10",
            "--tmax",
            "3",
            "--batch-size",
            "2",
        ]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and len(list_shards(root, "calls")) < 2:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = _calls(root)
        asked_before = sum(srv.hits.values())
        assert 0 < len(before) <= asked_before
        for shard in list_shards(root, "calls"):
            pq.read_table(shard)  # every published shard is a complete Parquet file
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        asked_after = sum(srv.hits.values()) - asked_before
    after = _calls(root)
    assert len(before) < len(after)
    keys = [(q, e, p) for q, e, p, *_ in after]
    assert len(keys) == len(set(keys))
    assert set(before) <= set(after)
    # the re-run asked for what was missing: at most the calls lost in flight are asked twice
    assert asked_after <= len(after) - len(before) + 2
    with Warehouse(root) as wh:
        assert all(v == 0 for v in wh.data_tests().values())


def test_sigterm_writes_every_answered_call_before_exiting(tmp_path):
    """A scheduler cancelling a run (SIGTERM) loses nothing that was answered: the buffer is flushed."""
    root = tmp_path / "wh"
    cfg = tmp_path / "experts.toml"
    with LoopbackExpertServer(["alpha:1b"], delay_s=0.05) as srv:
        cfg.write_text(f"[[experts]]\nname = 'alpha'\nmodel = 'alpha:1b'\nbase_url = '{srv.base}'\n")
        cmd = [
            sys.executable,
            "-m",
            "der.cli",
            "prefetch",
            "--experts",
            str(cfg),
            "--warehouse",
            str(root),
            "--limit",
            "40",
            "--tmax",
            "1",
        ]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while time.time() < deadline and srv.hits["alpha:1b"] < 6:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        answered = srv.hits["alpha:1b"]
    assert proc.returncode == 130 and "interrupted" in err
    assert answered - 1 <= len(_calls(root)) <= answered  # at most the call in flight is lost
    assert len(_calls(root)) < 40


def test_call_keys_are_those_of_the_real_recording():
    """The fast key path (identity serialised once) addresses exactly the calls already recorded."""
    specs = load_experts("llama-local")
    with Warehouse(FIXTURE_WAREHOUSE) as wh:
        recorded = {r[0] for r in wh.query_rows("select call_key from calls")}
        qids = {r[0] for r in wh.query_rows("select question_id from questions")}
    qs = [q for q in load_questions().questions if q.question_id in qids]
    fast = TaskMaker(specs, TEMPLATE)
    keys = set()
    for q in qs:
        for prev in (None, "yes", "no"):
            for s in specs:
                key = fast(q, prev, s).key
                assert key == make_task(q, prev, s, TEMPLATE).key
                keys.add(key)
    assert len(qs) == len(qids) and recorded <= keys
