"""Each benchmark script runs on tiny inputs (timings are measured by `make bench`, not asserted here)."""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[1] / "benchmarks"


@pytest.fixture(scope="module", autouse=True)
def bench_env(tmp_path_factory):
    wh = tmp_path_factory.mktemp("bench") / "warehouse"
    shutil.copytree(Path(__file__).parent / "fixtures" / "warehouse", wh)
    mp = pytest.MonkeyPatch()
    mp.setenv("DER_BENCH_WAREHOUSE", str(wh))
    mp.syspath_prepend(str(BENCH))
    for name in [m for m in sys.modules if m.startswith(("b1_", "b2_", "b3_", "b5_", "b6_", "b7_", "b8_", "_common"))]:
        del sys.modules[name]
    yield
    mp.undo()


@pytest.mark.parametrize(
    ("module", "kwargs", "title"),
    [
        ("b1_train", {"steps": 256, "live_calls": 6}, "B1"),
        ("b2_env", {"steps": 2000}, "B2"),
        ("b3_evaluate", {"n": 40}, "B3"),
        ("b5_chain_calls", {"n_questions": 1}, "B5"),
        ("b6_rerun", {"n_questions": 12}, "B6"),
        ("b7_client_overhead", {"n": 10}, "B7"),
        ("b8_scale", {"n_questions": 300, "n_experts": 3}, "B8"),
    ],
)
def test_benchmark_runs_and_prints_its_table(module, kwargs, title):
    table = importlib.import_module(module).main(**kwargs)
    assert table.startswith(f"### {title}") and "| target |" not in table.splitlines()[0]
    assert len([line for line in table.splitlines() if line.startswith("| ")]) >= 2
