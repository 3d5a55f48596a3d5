"""End to end: the `der` console commands on the fixture warehouse (a slice of the real recording)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "warehouse"
ROOT = Path(__file__).parents[1]


def der(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "der.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=check,
        timeout=600,
    )


@pytest.fixture(scope="module")
def pipeline_out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    done = der(
        "pipeline", "--warehouse", str(FIXTURE), "--out", str(out), "--steps", "512", "--frontier-alphas", "0.0", "0.2"
    )
    assert "## gold-stop" in done.stdout and "## learned-stop" in done.stdout
    assert "| method | accuracy |" in done.stdout
    return out


def test_pipeline_writes_both_reports_with_the_reference_keys(pipeline_out):
    report = json.loads((pipeline_out / "report.json").read_text())
    for key in (
        "config",
        "calibration",
        "begin_probe_baselines",
        "end_results_eval",
        "der_samples",
        "train_time_sec",
        "timestamp",
        "protocols",
        "provenance",
    ):
        assert key in report
    assert set(report["end_results_eval"]) == {"gold-stop", "fixed-budget", "learned-stop"}
    names = {r["name"] for r in report["end_results_eval"]["learned-stop"]}
    assert {
        "DER(PPO_router)_multistep",
        "DER_stop(PPO_router)_learned",
        "static:round_robin_multistep",
        "oracle:all_experts_pick_best_1step",
        "oracle:all_experts_every_step_multistep",
        "random_router_multistep",
        "agreement_stop_multistep",
    } <= names
    assert report["provenance"]["cache_fingerprint"]
    md = (pipeline_out / "report.md").read_text()
    assert "## Protocol `gold-stop`" in md and "## Protocol `fixed-budget`" in md and "Sample traces" in md
    assert (pipeline_out / "router" / "router.json").exists()


def test_ask_replays_a_recorded_question(pipeline_out):
    qid = der(
        "sql",
        "--warehouse",
        str(FIXTURE),
        "select question_id from questions where partition = 'eval' order by question_id limit 1",
        "--format",
        "csv",
    ).stdout.splitlines()[1]
    done = der(
        "ask",
        "--replay",
        "--warehouse",
        str(FIXTURE),
        "--router",
        str(pipeline_out / "router-stop"),
        "--question-id",
        qid,
        "--json",
    )
    res = json.loads(done.stdout)
    assert res["question_id"] == qid and res["source"] == "replay"
    assert 1 <= len(res["steps"]) <= 3 and res["final_answer"] in ("yes", "no", "unknown")


def test_sql_formats_and_refusals():
    table = der("sql", "--warehouse", str(FIXTURE), "select expert, count(*) as n from calls group by 1 order by 1")
    assert table.stdout.splitlines()[0].split() == ["expert", "n"]
    js = der("sql", "--warehouse", str(FIXTURE), "select * from oracle_bounds", "--format", "json").stdout
    assert [json.loads(line)["depth"] for line in js.splitlines()] == [1, 2, 3]
    bad = der("sql", "--warehouse", str(FIXTURE), "drop view calls", check=False)
    assert bad.returncode == 2 and "read-only" in bad.stderr


def test_missing_warehouse_is_a_clear_error(tmp_path):
    done = der("pipeline", "--warehouse", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), check=False)
    assert done.returncode == 2 and "does not exist" in done.stderr and "Traceback" not in done.stderr
