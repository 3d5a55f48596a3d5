"""Faults and crashes lose nothing and poison nothing (the short suite; `make soak` runs the long one)."""

from __future__ import annotations

import errno
from collections import Counter

import pytest

from der.data import load_questions
from der.prefetch import prefetch
from der.store import list_shards
from der.warehouse import Warehouse
from tests.faults import (
    MODELS,
    TEMPLATE,
    Tally,
    answers,
    check,
    concurrent_trial,
    kill_trial,
    random_fault_trial,
    reference,
    specs_for,
)
from tests.loopback import LoopbackExpertServer

N_QUESTIONS, TMAX = 6, 3


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    return reference(tmp_path_factory.mktemp("ref"), N_QUESTIONS, TMAX)


def _clean(tally: Tally) -> None:
    assert tally.survived == tally.trials
    assert (
        tally.rows_lost,
        tally.duplicates,
        tally.corrupt_shards_read,
        tally.failed_as_answers,
        tally.failed_in_training,
        tally.mismatches,
    ) == (0, 0, 0, 0, 0, 0)


@pytest.mark.parametrize("seed", [1, 2])
def test_random_server_faults_are_recorded_as_failures_and_healed_by_reruns(tmp_path, expected, seed):
    tally = Tally()
    random_fault_trial(tmp_path, expected, N_QUESTIONS, TMAX, seed, tally)
    assert sum(tally.faults.values()) > 5
    _clean(tally)


@pytest.mark.parametrize("seed", range(3))
def test_sigkill_mid_run_then_rerun(tmp_path, expected, seed):
    tally = Tally()
    kill_trial(tmp_path, expected, N_QUESTIONS, TMAX, seed, tally)
    _clean(tally)


def test_two_prefetch_processes_on_one_warehouse(tmp_path, expected):
    tally = Tally()
    concurrent_trial(tmp_path, expected, N_QUESTIONS, TMAX, tally)
    _clean(tally)


def test_a_server_outage_is_recorded_as_refused_calls_then_healed(tmp_path, expected):
    root = tmp_path / "wh"
    qs = load_questions(limit=N_QUESTIONS).questions
    with LoopbackExpertServer(MODELS, schedule=["ok"] * 4 + ["refused"], outage_s=2.0) as srv:
        stats = prefetch(qs, specs_for(srv.base), root, TEMPLATE, tmax=TMAX)
        assert stats.failed > 0 and stats.ok >= 4
        with Warehouse(root) as wh:
            errors = [e for (e,) in wh.query_rows("select error from calls where status = 'failed'")]
        assert errors and any("Connection refused" in e for e in errors), errors[:3]
        before = answers(root)
        assert srv.up.wait(10)
        prefetch(qs, specs_for(srv.base), root, TEMPLATE, tmax=TMAX)
    tally = Tally(trials=1, survived=1, faults=Counter(srv.faults_injected))
    check(root, expected, tally, before, tmax=TMAX)
    _clean(tally)


def test_disk_full_mid_shard_loses_only_unpublished_rows(tmp_path, expected, monkeypatch):
    import pyarrow.parquet as pq

    root = tmp_path / "wh"
    qs = load_questions(limit=N_QUESTIONS).questions
    real_write = pq.write_table
    writes = {"n": 0}

    def failing_write(table, where, **kw):
        writes["n"] += 1
        if writes["n"] == 4:  # the fourth shard hits a full disk halfway through
            where.write(b"PAR1 partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(table, where, **kw)

    monkeypatch.setattr(pq, "write_table", failing_write)
    with LoopbackExpertServer(MODELS) as srv:
        with pytest.raises(OSError, match="No space left"):
            prefetch(qs, specs_for(srv.base), root, TEMPLATE, tmax=TMAX, flush_rows=4)
        assert not [p for p in (root / "calls").iterdir() if p.name.startswith(".tmp-")]
        before = answers(root)
        assert before  # the shards published before the failure are intact
        monkeypatch.setattr(pq, "write_table", real_write)
        prefetch(qs, specs_for(srv.base), root, TEMPLATE, tmax=TMAX)
    tally = Tally(trials=1, survived=1)
    check(root, expected, tally, before, tmax=TMAX)
    _clean(tally)
    assert len(list_shards(root, "calls")) >= 2
