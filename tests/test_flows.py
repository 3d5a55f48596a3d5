"""The Prefect flows run for real (prefect_test_harness), and the deployments resolve."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module", autouse=True)
def harness(tmp_path_factory) -> Iterator[None]:
    import os

    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_prefetch_flow_records_the_same_cache_as_the_library(tmp_path, server):
    from der.config import parse_experts
    from der.data import load_questions
    from der.prefetch import prefetch
    from der.prompts import get_template
    from der.warehouse import Warehouse
    from flows.prefetch import PrefetchParams, prefetch_flow

    cfg = tmp_path / "experts.toml"
    cfg.write_text(
        f"[defaults]\nbase_url = '{server.base}'\n[[experts]]\nname = 'alpha'\nmodel = 'alpha:1b'\n"
        "[[experts]]\nname = 'beta'\nmodel = 'beta:3b'\n"
    )
    totals = prefetch_flow(
        PrefetchParams(experts=str(cfg), warehouse=str(tmp_path / "flow"), limit=4, tmax=2, batch_size=2)
    )
    assert totals["questions"] == 4 and totals["failed"] == 0 and totals["asked"] > 0
    specs = parse_experts(
        {
            "defaults": {"base_url": server.base},
            "experts": [{"name": "alpha", "model": "alpha:1b"}, {"name": "beta", "model": "beta:3b"}],
        }
    )
    prefetch(load_questions(limit=4).questions, specs, tmp_path / "lib", get_template("ref-v1"), tmax=2)
    q = "select question_id, expert, prev_answer, answer from calls order by all"
    with Warehouse(tmp_path / "flow") as a, Warehouse(tmp_path / "lib") as b:
        assert a.query_rows(q) == b.query_rows(q)


def test_pipeline_flow_writes_the_report(tmp_path):
    from der.synthetic import make_warehouse
    from flows.pipeline import PipelineParams, pipeline_flow

    make_warehouse(tmp_path / "wh", n_questions=45)
    out = pipeline_flow(PipelineParams(warehouse=str(tmp_path / "wh"), out=str(tmp_path / "out"), steps=256))
    assert Path(out).exists() and (tmp_path / "out" / "report.md").exists()
    assert (tmp_path / "out" / "router" / "router.zip").exists()


def test_flow_tasks_retry_where_io_happens():
    from flows import pipeline, prefetch

    assert prefetch.record_batch.retries >= 1 and prefetch.preflight.retries >= 1
    assert pipeline.load.retries >= 1 and pipeline.report.retries >= 1


def test_every_deployment_entrypoint_resolves_to_a_flow():
    from prefect.flows import Flow, load_flow_from_entrypoint

    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert doc["deployments"]
    for dep in doc["deployments"]:
        flow = load_flow_from_entrypoint(str(ROOT / dep["entrypoint"]))
        assert isinstance(flow, Flow), dep["name"]
        assert dep.get("schedules") and dep.get("work_pool", {}).get("name")
