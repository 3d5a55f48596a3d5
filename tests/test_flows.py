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


def _experts_toml(tmp_path: Path, base: str, backend: str = "ollama", extra: str = "") -> Path:
    cfg = tmp_path / "experts.toml"
    cfg.write_text(
        f"[defaults]\nbackend = '{backend}'\nbase_url = '{base}'\n{extra}"
        "[[experts]]\nname = 'alpha'\nmodel = 'alpha:1b'\n[[experts]]\nname = 'beta'\nmodel = 'beta:3b'\n"
    )
    return cfg


def _dask_runner():
    pytest.importorskip("prefect_dask", reason="prefect-dask is not installed (pip install prefect-dask)")
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(
        cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
    )


def _ray_runner():
    pytest.importorskip("prefect_ray", reason="prefect-ray is not installed (pip install prefect-ray)")
    from prefect_ray import RayTaskRunner

    return RayTaskRunner(init_kwargs={"num_cpus": 2, "include_dashboard": False, "log_to_driver": False})


@pytest.mark.parametrize("make_runner", [_dask_runner, _ray_runner], ids=["dask", "ray"])
def test_prefetch_on_a_local_cluster_gives_the_same_cache(tmp_path, server, monkeypatch, make_runner):
    from der.warehouse import Warehouse
    from flows.prefetch import PrefetchParams, prefetch_flow

    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the workers import flows.prefetch
    cfg = _experts_toml(tmp_path, server.base)
    common = {"experts": str(cfg), "limit": 6, "tmax": 3, "batch_size": 2}
    prefetch_flow(PrefetchParams(warehouse=str(tmp_path / "default"), **common))
    runner = make_runner()
    totals = prefetch_flow.with_options(task_runner=runner)(
        PrefetchParams(warehouse=str(tmp_path / "cluster"), parallel_batches=3, **common)
    )
    assert totals["failed"] == 0
    q = "select question_id, expert, prev_answer, answer, raw_text from calls order by all"
    with Warehouse(tmp_path / "default") as a, Warehouse(tmp_path / "cluster") as b:
        assert a.query_rows(q) == b.query_rows(q)
        assert set(b.data_tests().values()) == {0}


def test_api_keys_can_come_from_a_prefect_secret_block(tmp_path):
    from prefect.blocks.system import Secret

    from flows.prefetch import PrefetchParams, prefetch_flow
    from tests.loopback import LoopbackExpertServer

    key = "sk-from-secret-block-93e1"
    Secret(value=key).save("der-test-api-key", overwrite=True)
    with LoopbackExpertServer(["alpha:1b", "beta:3b"]) as srv:
        cfg = _experts_toml(tmp_path, srv.base, "openai", "api_key_env = 'DER_SECRET_TEST_KEY'\n")
        totals = prefetch_flow(
            PrefetchParams(
                experts=str(cfg),
                warehouse=str(tmp_path / "wh"),
                limit=2,
                tmax=1,
                api_key_blocks={"DER_SECRET_TEST_KEY": "der-test-api-key"},
            )
        )
        assert totals["failed"] == 0 and totals["asked"] == 4
        assert all(r["headers"]["Authorization"] == f"Bearer {key}" for r in srv.requests)
    assert not [p for p in (tmp_path / "wh").rglob("*") if p.is_file() and key.encode() in p.read_bytes()]
