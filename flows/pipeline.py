"""Weekly retrain: check the warehouse, train a router, evaluate everything, write the report.

The same library functions as `der pipeline`, each a task; nothing reads a live expert.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, Field

from der.pipeline import PipelineConfig, check_warehouse, load_data, report_stage, train_stage
from der.replay import ReplayData
from der.train import TrainConfig, TrainResult


class PipelineParams(BaseModel):
    """Parameters of the retrain flow (the same meaning as `der pipeline`'s options)."""

    warehouse: str = "warehouse/data"
    out: str = "reports/latest"
    steps: int = Field(3000, ge=1)
    seed: int = 7
    eval_limit: int | None = Field(None, ge=1)

    def config(self) -> PipelineConfig:
        return PipelineConfig(
            warehouse=self.warehouse,
            out=Path(self.out),
            eval_limit=self.eval_limit,
            train=TrainConfig(steps=self.steps, seed=self.seed),
        )


@task(cache_policy=NO_CACHE)
def check(cfg: PipelineConfig) -> None:
    check_warehouse(cfg.warehouse, cfg.train.reward.tmax)


@task(retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE)
def load(cfg: PipelineConfig) -> ReplayData:
    """Embed missing states (disk I/O, the embedding model) and build the replay arrays."""
    return load_data(cfg)


@task(cache_policy=NO_CACHE)
def train(data: ReplayData, cfg: PipelineConfig) -> dict[str, TrainResult]:
    return train_stage(data, cfg)


@task(retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE)
def report(data: ReplayData, cfg: PipelineConfig, trained: dict[str, TrainResult]) -> str:
    """Evaluate and write the report files (retried: it only reads the warehouse and writes files)."""
    report_stage(data, cfg, trained)
    return str(cfg.out / "report.json")


@flow(name="der-pipeline", log_prints=True)
def pipeline_flow(params: PipelineParams | None = None) -> str:
    """Train, evaluate and report from the recording; returns the report.json path."""
    cfg = (params or PipelineParams()).config()
    check(cfg)
    data = load(cfg)
    trained = train(data, cfg)
    return report(data, cfg, trained)


if __name__ == "__main__":
    pipeline_flow(PipelineParams(warehouse="warehouse/recording", out="reports/flow"))
