"""The long soak (`make soak`): many SIGKILLs and fault schedules; writes docs/reliability.md's figures
when DER_RELIABILITY_DOC names it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.faults import Tally, concurrent_trial, kill_trial, random_fault_trial, reference, write_doc

pytestmark = pytest.mark.soak
N_QUESTIONS, TMAX = 8, 3


def test_soak(tmp_path):
    t0 = time.perf_counter()
    expected = reference(tmp_path, N_QUESTIONS, TMAX)
    tally = Tally()
    for seed in range(int(os.environ.get("DER_SOAK_KILLS", "50"))):
        kill_trial(tmp_path, expected, N_QUESTIONS, TMAX, seed, tally)
    for seed in range(int(os.environ.get("DER_SOAK_FAULT_RUNS", "12"))):
        random_fault_trial(tmp_path, expected, N_QUESTIONS, TMAX, 100 + seed, tally)
    for i in range(3):
        concurrent_trial(tmp_path / f"c{i}", expected, N_QUESTIONS, TMAX, tally)
    doc = os.environ.get("DER_RELIABILITY_DOC")
    if doc:
        write_doc(Path(doc), tally, time.perf_counter() - t0)
    assert tally.survived == tally.trials
    assert (
        tally.rows_lost,
        tally.duplicates,
        tally.corrupt_shards_read,
        tally.failed_as_answers,
        tally.failed_in_training,
        tally.mismatches,
    ) == (0, 0, 0, 0, 0, 0)
