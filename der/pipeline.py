"""The main job: warehouse -> embeddings -> replay arrays -> PPO router -> evaluation -> report.

Each stage is a library function; ``der pipeline`` runs them in order and ``flows/pipeline.py``
runs the same functions as Prefect tasks.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from der.embeddings import ensure_embeddings
from der.env import cost_weights
from der.errors import ConfigError, WarehouseError
from der.evaluate import PROTOCOLS, evaluate, methods, rollout, tune_confidence
from der.features import Features
from der.frontier import ALPHAS, summarise, sweep
from der.replay import ReplayData, load_replay
from der.report import build_report, make_figures, traces, write_report
from der.store import Location
from der.train import TrainConfig, TrainResult, train_router, train_rows
from der.warehouse import Warehouse

log = logging.getLogger("der.pipeline")


@dataclass
class PipelineConfig:
    """Settings of ``der pipeline``; defaults are the reference demo's where it has one."""

    warehouse: str = "warehouse/data"
    """Warehouse root holding the recording (a folder or an fsspec URL)."""
    out: Path = Path("reports/latest")
    """Folder for report.json, report.md and the trained router."""
    experts: tuple[str, ...] = ()
    """Experts to route over, in action order (default: every recorded expert)."""
    eval_limit: int | None = None
    """Evaluate on at most this many eval-partition questions (None: all)."""
    probe_samples: int = 40
    """Eval questions in the single-shot probe (begin_probe_baselines)."""
    show_der_qa: int = 10
    """Sample traces in the report."""
    stop_router: bool = True
    """Also train a router with a learned STOP action (evaluated under learned-stop)."""
    stop_features: Features = "state+confidence"
    """Observation of the STOP router (docs/stop.md has the ablation)."""
    frontier: bool = True
    """Sweep alpha for the cost-accuracy frontier under learned-stop (one STOP router per alpha)."""
    frontier_alphas: tuple[float, ...] = ALPHAS
    train: TrainConfig = field(default_factory=TrainConfig)


def validate(cfg: PipelineConfig) -> None:
    """Reject settings that cannot work, before any data is loaded."""
    cfg.train.validate()
    for name in ("eval_limit", "probe_samples", "show_der_qa"):
        value = getattr(cfg, name)
        if value is not None and value < (0 if name == "show_der_qa" else 1):
            raise ConfigError(f"{name} must be positive (got {value})")
    if any(a < 0 for a in cfg.frontier_alphas):
        raise ConfigError(f"frontier alphas must be >= 0 (got {cfg.frontier_alphas})")
    if cfg.out.exists() and not cfg.out.is_dir():
        raise ConfigError(f"--out {cfg.out} is a file; give a folder for the report (created if missing)")


def check_warehouse(root: str, tmax: int) -> None:
    """Run the data tests; refuse to train on a warehouse that fails any."""
    if not Location(root).exists():
        raise WarehouseError(f"warehouse {root} does not exist; record into it with `der prefetch --warehouse {root}`")
    with Warehouse(root, tmax=tmax) as wh:
        failed = {k: v for k, v in wh.data_tests().items() if v}
    if failed:
        raise WarehouseError(f"{root}: data tests failed ({failed}); inspect with `der sql` before training")


def load_data(cfg: PipelineConfig) -> ReplayData:
    """Embed missing states, then build the replay arrays."""
    added = ensure_embeddings(cfg.warehouse)
    if added:
        log.info("embedded %d new states", added)
    data = load_replay(cfg.warehouse, list(cfg.experts) or None, tmax=cfg.train.reward.tmax)
    if data.incomplete:
        log.warning("%d questions left out: some reachable call is missing or failed", len(data.incomplete))
    return data


def eval_rows(data: ReplayData, limit: int | None) -> np.ndarray:
    """Eval-partition rows, cut to ``limit``."""
    rows = data.indices("eval")
    if len(rows) == 0:
        raise WarehouseError("no replayable questions in the eval partition; record more questions")
    return rows if limit is None else rows[:limit]


REFERENCE_ROUTER = "DER(PPO_router)_multistep"
STOP_ROUTER = "DER_stop(PPO_router)_learned"


def run_evaluation(data: ReplayData, cfg: PipelineConfig, trained: dict[str, TrainResult]) -> dict[str, Any]:
    """Probe, full evaluation and sample traces, for every protocol."""
    reward = cfg.train.reward
    train = train_rows(data, cfg.train.train_limit)
    weights = cost_weights(data, train)
    rows = eval_rows(data, cfg.eval_limit)
    probe_rows = rows[: cfg.probe_samples]
    single = [m for m in methods(data, weights, reward.tmax, cfg.train.seed) if m.name.startswith("single_shot:")]
    probe = {p: [rollout(data, probe_rows, m, p, weights, reward) for m in single] for p in PROTOCOLS}
    threshold = tune_confidence(data, train, weights, reward)
    routers = {name: t.router for name, t in trained.items()}
    results = evaluate(data, rows, weights, reward, routers, seed=cfg.train.seed, confidence_threshold=threshold)
    sample_rows = rows[: cfg.show_der_qa]
    raw, questions = _sample_text(cfg.warehouse, [data.question_ids[r] for r in sample_rows])
    samples = {}
    for p, rs in results.items():
        name = STOP_ROUTER if p == "learned-stop" and STOP_ROUTER in routers else REFERENCE_ROUTER
        der = next(r for r in rs if r.name == name).head(len(sample_rows))
        samples[p] = traces(data, sample_rows, der, weights, reward.cost_mode, raw, questions, p)
    front = None
    if cfg.frontier and cfg.frontier_alphas:
        trained_stop = {reward.alpha: routers[STOP_ROUTER]} if STOP_ROUTER in routers else {}
        points = sweep(data, train, rows, weights, cfg.train, cfg.stop_features, cfg.frontier_alphas, trained_stop)
        front = {"points": [asdict(p) for p in points], "area_under_frontier": summarise(points)}
    return {
        "weights": weights,
        "rows": rows,
        "probe": probe,
        "results": results,
        "samples": samples,
        "confidence_threshold": threshold,
        "frontier": front,
    }


def _sample_text(root: str, qids: list[str]) -> tuple[dict[tuple[str, str, str], str], dict[str, str]]:
    with Warehouse(root) as wh:
        raw = wh.query_rows(
            "select question_id, expert, prev_answer, raw_text from calls "
            "where status = 'ok' and question_id in (select unnest(?::varchar[]))",
            [qids],
        )
        qs = wh.query_rows(
            "select question_id, question from questions where question_id in (select unnest(?::varchar[]))", [qids]
        )
    return {(q, e, p): t or "" for q, e, p, t in raw}, dict(qs)


def provenance(cfg: PipelineConfig, data: ReplayData, n_eval: int) -> dict[str, Any]:
    """Where the numbers come from: warehouse, cache fingerprint, counts, recording manifest."""
    loc = Location(cfg.warehouse)
    manifest = loc.join("manifest.json")
    doc: dict[str, Any] = {
        "warehouse": str(cfg.warehouse),
        "cache_fingerprint": data.fingerprint,
        "experts": data.experts,
        "train_questions": len(train_rows(data, cfg.train.train_limit)),
        "eval_questions": int(n_eval),
        "incomplete_questions": len(data.incomplete),
        "partition": "router-train / router-eval carved from BoolQ dev by question-id hash (1/3 eval)",
    }
    if loc.fs.exists(manifest):
        m = json.loads(loc.fs.cat(manifest))
        doc["recording"] = m.get("summary", "")
        doc["manifest"] = m
    return doc


def train_stage(data: ReplayData, cfg: PipelineConfig, progress: bool = False) -> dict[str, TrainResult]:
    """Train the reference router (and the STOP router unless disabled); save them under ``out``."""
    trained = {REFERENCE_ROUTER: train_router(data, cfg.train, progress=progress)}
    trained[REFERENCE_ROUTER].router.save(cfg.out / "router")
    if cfg.stop_router:
        stop_cfg = replace(cfg.train, reward=replace(cfg.train.reward, mode="deployable", features=cfg.stop_features))
        trained[STOP_ROUTER] = train_router(data, stop_cfg, progress=progress)
        trained[STOP_ROUTER].router.save(cfg.out / "router-stop")
    return trained


def report_stage(data: ReplayData, cfg: PipelineConfig, trained: dict[str, TrainResult]) -> dict[str, Any]:
    """Evaluate, then write report.json and report.md; returns the report document."""
    ev = run_evaluation(data, cfg, trained)
    report = build_report(
        config=asdict(cfg),
        data=data,
        weights=ev["weights"],
        probe=ev["probe"],
        results=ev["results"],
        samples=ev["samples"],
        train_time_sec=sum(t.train_time_sec for t in trained.values()),
        provenance=provenance(cfg, data, len(ev["rows"])),
        curve={name: t.curve for name, t in trained.items()},
    )
    report["confidence_threshold"] = ev["confidence_threshold"]
    report["frontier"] = ev["frontier"]
    picks = {
        f"{r.name} ({p})": r.picks
        for p, rs in ev["results"].items()
        for r in rs
        if (p, r.name) in (("gold-stop", REFERENCE_ROUTER), ("learned-stop", STOP_ROUTER))
    }
    figures = make_figures(report, cfg.warehouse, data.experts, picks, cfg.out)
    write_report(report, cfg.out, figures)
    return report


def run_pipeline(cfg: PipelineConfig, progress: bool = False) -> dict[str, Any]:
    """Check, load, train, evaluate and write the report; returns the report document."""
    validate(cfg)
    check_warehouse(cfg.warehouse, cfg.train.reward.tmax)
    data = load_data(cfg)
    trained = train_stage(data, cfg, progress)
    return report_stage(data, cfg, trained)
