"""Nightly prefetch: record new questions (or new experts) into the warehouse.

Invariant: a failed expert call is recorded as a failure by the library and asked again on the
next run; nothing here turns a failure into an answer. Each batch is its own task, so a retry
repeats only that batch, and the library skips every call already recorded.
"""

from __future__ import annotations

import os
from typing import Literal

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, Field

from der.config import load_experts
from der.data import Question, load_questions
from der.experts import ExpertSpec, make_expert
from der.prefetch import PrefetchStats, prefetch, select_questions
from der.prompts import get_template


class PrefetchParams(BaseModel):
    """Parameters of the prefetch flow (the same meaning as `der prefetch`'s options)."""

    experts: str = "reference-ollama"
    warehouse: str = "warehouse/data"
    dataset: str = "boolq"
    limit: int | None = Field(None, ge=1)
    offset: int = Field(0, ge=0)
    partition: Literal["all", "train", "eval"] = "all"
    question_ids: list[str] = Field(default_factory=list)
    on_bad_rows: Literal["error", "skip"] = "error"
    tmax: int = Field(3, ge=1, le=8)
    template: str = "ref-v1"
    batch_size: int = Field(25, ge=1, le=10_000)
    api_key_blocks: dict[str, str] = Field(default_factory=dict)
    """Environment variable -> Prefect Secret block name: experts' `api_key_env` keys, loaded
    inside each task (also on remote workers) and never passed as parameters or logged."""
    parallel_batches: int = Field(1, ge=1, le=64)
    """Batches in flight at once on the task runner; each bounds its own calls per host, so a host
    sees at most parallel_batches x concurrency calls."""


def _apply_secrets(blocks: dict[str, str]) -> None:
    if not blocks:
        return
    from prefect.blocks.system import Secret

    for env, block in blocks.items():
        os.environ[env] = Secret.load(block).get()


@task(cache_policy=NO_CACHE)
def load_specs(experts: str) -> list[ExpertSpec]:
    return load_experts(experts)


@task(retries=3, retry_delay_seconds=[10, 30, 60], cache_policy=NO_CACHE)
def preflight(specs: list[ExpertSpec], secrets: dict[str, str]) -> list[ExpertSpec]:
    """Servers up and models present; also fills Ollama digests into the specs it returns."""
    _apply_secrets(secrets)
    for spec in specs:
        expert = make_expert(spec)
        try:
            expert.preflight()
        finally:
            expert.close()
    return specs


@task(cache_policy=NO_CACHE)
def load(params: PrefetchParams) -> list[Question]:
    loaded = load_questions(params.dataset, on_bad=params.on_bad_rows)
    for s in loaded.skipped:
        get_run_logger().warning("skipped %s row %d: %s", s.source, s.row, s.reason)
    return select_questions(loaded.questions, params.offset, params.limit, params.partition, params.question_ids)


@task(retries=2, retry_delay_seconds=[30, 120], cache_policy=NO_CACHE)
def record_batch(batch: list[Question], specs: list[ExpertSpec], params: PrefetchParams) -> PrefetchStats:
    """Record one batch; on retry only its missing calls are asked."""
    _apply_secrets(params.api_key_blocks)
    return prefetch(
        batch,
        specs,
        params.warehouse,
        get_template(params.template),
        tmax=params.tmax,
        batch_size=params.batch_size,
        preflight=False,
    )


@flow(name="der-prefetch", log_prints=True)
def prefetch_flow(params: PrefetchParams | None = None) -> dict[str, int]:
    """Preflight every expert, then record the selected questions batch by batch."""
    params = params or PrefetchParams()
    log = get_run_logger()
    specs = preflight(load_specs(params.experts), params.api_key_blocks)
    questions = load(params)
    totals = {"questions": len(questions), "asked": 0, "ok": 0, "failed": 0, "cached": 0}
    batches = [questions[i : i + params.batch_size] for i in range(0, len(questions), params.batch_size)]
    for wave in range(0, len(batches), params.parallel_batches):
        futures = [record_batch.submit(b, specs, params) for b in batches[wave : wave + params.parallel_batches]]
        for i, future in enumerate(futures):
            stats = future.result()
            for k in ("asked", "ok", "failed", "cached"):
                totals[k] += getattr(stats, k)
            log.info("batch %d: %d asked (%d failed), %d cached", wave + i, stats.asked, stats.failed, stats.cached)
    return totals


if __name__ == "__main__":
    prefetch_flow(PrefetchParams(experts="llama-local", limit=5))
