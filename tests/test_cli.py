"""End to end: the `der` console commands on the fixture warehouse (a slice of the real recording)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "warehouse"
ROOT = Path(__file__).parents[1]
REFERENCE_KEYS = (
    "config",
    "calibration",
    "begin_probe_baselines",
    "end_results_eval",
    "der_samples",
    "train_time_sec",
    "timestamp",
)


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
def wh(tmp_path_factory) -> Path:
    """A copy of the fixture: the pipeline may add shards, and tests never write into the repository."""
    root = tmp_path_factory.mktemp("fixture") / "warehouse"
    shutil.copytree(FIXTURE, root)
    return root


@pytest.fixture(scope="module")
def pipeline_out(tmp_path_factory, wh) -> Path:
    out = tmp_path_factory.mktemp("report")
    done = der(
        "pipeline", "--warehouse", str(wh), "--out", str(out), "--steps", "512", "--frontier-alphas", "0.0", "0.2"
    )
    assert "## gold-stop" in done.stdout and "## learned-stop" in done.stdout
    assert "| method | accuracy |" in done.stdout
    return out


def test_pipeline_writes_the_reports_with_the_reference_keys(pipeline_out):
    report = json.loads((pipeline_out / "report.json").read_text())
    assert set(REFERENCE_KEYS) | {"protocols", "provenance", "frontier"} <= set(report)
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
    html = (pipeline_out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 5 and "http://" not in html and "https://" not in html
    assert {p.name for p in (pipeline_out / "figures").iterdir()} >= {
        "cost_accuracy.png",
        "accuracy_heatmap.png",
        "flip_matrix.png",
        "latency.png",
        "learning_curve.png",
        "router_choices.png",
    }
    assert (pipeline_out / "router" / "router.json").exists()


def test_ask_replays_a_recorded_question(pipeline_out, wh):
    qid = der(
        "sql",
        "--warehouse",
        str(wh),
        "select question_id from questions where partition = 'eval' order by question_id limit 1",
        "--format",
        "csv",
    ).stdout.splitlines()[1]

    def replay(*which: str) -> dict:
        router = str(pipeline_out / "router-stop")
        return json.loads(der("ask", "--replay", "--warehouse", str(wh), "--router", router, "--json", *which).stdout)

    res = replay("--question-id", qid)
    assert res["question_id"] == qid and res["source"] == "replay"
    assert 1 <= len(res["steps"]) <= 3 and res["final_answer"] in ("yes", "no", "unknown")
    assert all(step["raw_text"] for step in res["steps"])  # the recorded text, not only the parsed answer
    assert replay(res["question"])["question_id"] == qid  # the question text alone finds it too


def test_report_compare_puts_two_runs_side_by_side(pipeline_out, tmp_path):
    done = der("report", "--compare", str(pipeline_out), str(pipeline_out), "--out", str(tmp_path))
    html = (tmp_path / "compare.html").read_text()
    assert "compare.html" in done.stdout and "DER_stop(PPO_router)_learned" in html and "+0.000" in html


def test_sql_formats_and_refusals(wh):
    table = der("sql", "--warehouse", str(wh), "select expert, count(*) as n from calls group by 1 order by 1")
    assert table.stdout.splitlines()[0].split() == ["expert", "n"]
    js = der("sql", "--warehouse", str(wh), "select * from oracle_bounds", "--format", "json").stdout
    assert [json.loads(line)["depth"] for line in js.splitlines()] == [1, 2, 3]
    bad = der("sql", "--warehouse", str(wh), "drop view calls", check=False)
    assert bad.returncode == 2 and "read-only" in bad.stderr
    # errors raised while the query runs, not only when it is parsed
    for query, message in [
        ("select cast('x' as int)", "Conversion Error"),
        ("select * from sniff_csv('/etc/passwd')", ""),
    ]:
        failed = der("sql", "--warehouse", str(wh), query, check=False)
        assert failed.returncode == 2 and "query failed" in failed.stderr and message in failed.stderr
        assert "Traceback" not in failed.stderr and "root:" not in failed.stdout


def test_a_corrupt_shard_is_named_with_what_to_do(wh, tmp_path):
    copy = tmp_path / "wh"
    shutil.copytree(wh, copy)
    good = sorted((copy / "calls").glob("part-*.parquet"))[0]
    bad = copy / "calls" / "part-99990101T000000000000-truncate.parquet"
    bad.write_bytes(good.read_bytes()[:2000])
    for args in (["sql", "select count(*) from calls"], ["compact"], ["pipeline", "--out", str(tmp_path / "r")]):
        done = der(args[0], "--warehouse", str(copy), *args[1:], check=False)
        assert done.returncode == 2 and bad.name in done.stderr and "Move them out" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert good.exists() and bad.exists()  # nothing removed behind the user's back


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pipeline", "--warehouse", "/nonexistent/wh"], "does not exist"),
        (["pipeline", "--warehouse", "FIXTURE", "--alpha", "-1"], "alpha must be >= 0"),
        (["prefetch", "--experts", "no-such-config"], "experts config 'no-such-config' not found"),
        (["prefetch", "--experts", "llama-local", "--tmax", "0", "--warehouse", "/tmp/der-never"], "tmax must be"),
        (["ask", "--router", "/nonexistent/router", "is it?"], "no trained router"),
        (["train", "--warehouse", "FIXTURE", "--n-steps", "1"], "n_steps and batch_size must be at least 2"),
        (["train", "--warehouse", "FIXTURE", "--learning-rate", "-1"], "learning_rate must be > 0"),
        (["train", "--warehouse", "FIXTURE", "--torch-threads", "0"], "torch_threads must be >= 1"),
        (["prefetch", "--experts", "llama-local", "--batch-size", "0", "--warehouse", "/tmp/der-never"], "batch size"),
        (["prefetch", "--experts", "llama-local", "--offset", "5000", "--warehouse", "/tmp/der-never"], "no questions"),
        (["sql", "--warehouse", "FIXTURE", "--max-rows", "0"], "--max-rows must be at least 1"),
        (["report", "/nonexistent/run"], "not found"),
    ],
)
def test_bad_input_fails_clearly_without_a_traceback(args, message, wh):
    done = der(*[str(wh) if a == "FIXTURE" else a for a in args], check=False)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
