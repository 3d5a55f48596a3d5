"""Prefetch: record every expert under every KTP chain up to tmax, asking each distinct call once.

The cache is content-addressed. A call's key hashes the expert's identity (backend, model,
digest, options), the template version and the full prompt text; the prompt depends only on the
question and the answer passed on, so a chain's step at any depth is the same call as any other
step with the same (question, passed-on answer, expert). Walking the chains depth by depth and
skipping keys already recorded therefore asks at most experts x 3 calls per question (passed-on
answer none / yes / no) at any tmax, instead of E + E^2 + ... + E^tmax.

Calls are grouped by expert (an Ollama host never swaps models mid-phase), bounded per host by
the expert's ``concurrency``, and published as shards every few rows. A re-run asks only for
keys that have no ``ok`` row yet; failed calls are recorded as failures and asked again next time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from der.answers import PARSER_VERSION, parse_answer
from der.data import Question
from der.errors import ConfigError
from der.experts import Expert, ExpertSpec, make_expert
from der.prompts import PromptTemplate, passed_on
from der.store import Location, ShardWriter, write_shard
from der.warehouse import Warehouse

log = logging.getLogger("der.prefetch")
NONE = "none"  # prev_answer of a first-step call


def _key(identity_json: str, version: str, prompt: str) -> str:
    """Content address of one call: expert identity, template version and the full prompt."""
    # byte for byte json.dumps({"expert": identity, "template": version, "prompt": prompt}, sort_keys=True),
    # with the identity serialised once per expert instead of once per call (B6: 1.9 M keys took 90 s)
    doc = f'{{"expert": {identity_json}, "prompt": {json.dumps(prompt)}, "template": {json.dumps(version)}}}'
    return hashlib.sha256(doc.encode()).hexdigest()


@dataclass
class PrefetchStats:
    """What a prefetch run did."""

    run_id: str
    questions: int = 0
    new_questions: int = 0
    asked: int = 0
    ok: int = 0
    failed: int = 0
    cached: int = 0
    per_expert: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Questions held back before any call (their prompt may not fit a context), by row."""

    def count(self, expert: str, status: str) -> None:
        d = self.per_expert.setdefault(expert, {"ok": 0, "failed": 0})
        d[status] += 1


# English runs 3.5-4.5 characters per token; 3 over-estimates tokens, so a prompt passed as
# fitting surely fits, and only prompts at risk are held back.
CHARS_PER_TOKEN_LOW = 3.0


def fits_context(
    questions: list[Question], specs: list[ExpertSpec], template: PromptTemplate
) -> tuple[list[Question], list[tuple[Question, str]]]:
    """Split questions into those whose longest prompt fits every expert's context and the rest,
    each with the reason (a visible skip, never a silently cut prompt)."""
    keep, skipped = [], []
    tight = min(specs, key=lambda s: s.options.num_ctx - s.options.num_predict)
    for q in questions:
        longest = len(template.render(q.text, "yes"))
        est = longest / CHARS_PER_TOKEN_LOW
        if est > tight.options.num_ctx - tight.options.num_predict:
            skipped.append(
                (
                    q,
                    f"prompt of {longest} characters (about {est:.0f} tokens at most) may not fit expert "
                    f"{tight.name!r}: num_ctx {tight.options.num_ctx} minus num_predict; raise num_ctx",
                )
            )
        else:
            keep.append(q)
    return keep, skipped


def validate_run(specs: list[ExpertSpec], tmax: int, batch_size: int = 1) -> None:
    """Reject settings that cannot work, before any call."""
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1 (got {batch_size}): it is the questions walked at once")
    if tmax < 1:
        raise ConfigError(f"tmax must be at least 1 (got {tmax}): it is the longest chain to record")
    if not specs:
        raise ConfigError("no experts configured")


def check_consistent(wh: Warehouse, specs: list[ExpertSpec], template: PromptTemplate) -> None:
    """One expert name must mean one model and settings within a warehouse, or replay would mix
    answers from different models under one name."""
    fps = [s.fingerprint() for s in specs]
    for i, spec in enumerate(specs):
        twin = next((o for o, fp in zip(specs, fps, strict=True) if fp == fps[i] and o.name != spec.name), None)
        if twin is not None:
            raise ConfigError(
                f"experts {twin.name!r} and {spec.name!r} are the same model with the same settings; "
                "configure one expert (give it several base_url values to spread calls over hosts)"
            )
    recorded = wh.query_rows("select distinct expert, expert_fp, template from stg_call_attempts")
    for spec in specs:
        for name, fp, tpl in recorded:
            if name != spec.name and fp == spec.fingerprint() and tpl == template.version:
                raise ConfigError(
                    f"expert {spec.name!r} is the model recorded as {name!r} in {wh.root} (same settings); "
                    f"keep the name {name!r}: the recorded calls are filed under it"
                )
            if name == spec.name and (fp != spec.fingerprint() or tpl != template.version):
                raise ConfigError(
                    f"expert {spec.name!r} is already recorded in {wh.root} with other settings "
                    f"(fingerprint {fp}, template {tpl}; now {spec.fingerprint()}, {template.version}). "
                    "Give the changed expert a new name, or record into another --warehouse."
                )


def question_row(q: Question) -> dict[str, Any]:
    return {
        "question_id": q.question_id,
        "partition": q.partition,
        "question": q.question,
        "passage": q.passage,
        "label": q.label,
        "source": q.source,
        "source_row": q.row,
    }


@dataclass
class CallTask:
    question: Question
    prev: str | None
    spec: ExpertSpec
    prompt: str
    key: str


def call_row(task: CallTask, res: Any, template: PromptTemplate, run_id: str) -> dict[str, Any]:
    s = task.spec
    return {
        "call_key": task.key,
        "question_id": task.question.question_id,
        "expert": s.name,
        "expert_fp": s.fingerprint(),
        "backend": s.backend,
        "model": s.model,
        "digest": s.digest,
        "template": template.version,
        "prev_answer": task.prev or NONE,
        "step_kind": "first" if task.prev is None else "ktp",
        "prompt_chars": len(task.prompt),
        "status": res.status,
        "raw_text": res.raw_text,
        "answer": parse_answer(res.raw_text) if res.status == "ok" else None,
        "parser": PARSER_VERSION,
        "error": res.error,
        "latency_s": res.latency_s,
        "attempts": res.attempts,
        "host": res.host,
        "done_reason": res.done_reason,
        "prompt_tokens": res.prompt_tokens,
        "completion_tokens": res.completion_tokens,
        "load_s": res.load_s,
        "prompt_eval_s": res.prompt_eval_s,
        "eval_s": res.eval_s,
        "server_total_s": res.server_total_s,
        "p_yes": res.p_yes,
        "run_id": run_id,
        "recorded_at": datetime.now(UTC),
    }


Progress = Callable[[int, int], None]
"""Progress callback: (calls done in this run, current upper bound of calls to make)."""


def prefetch(
    questions: list[Question],
    specs: list[ExpertSpec],
    root: str | Path,
    template: PromptTemplate,
    tmax: int = 3,
    batch_size: int = 25,
    preflight: bool = True,
    experts: dict[str, Expert] | None = None,
    progress: Progress | None = None,
    flush_rows: int = 16,
) -> PrefetchStats:
    """Record every chain up to ``tmax`` for ``questions`` into the warehouse at ``root``.

    :param batch_size: questions walked to full depth before the next batch starts, so that an
        interrupted run leaves whole questions recorded.
    :param experts: backend instances to use (tests inject them); built from ``specs`` otherwise.
    """
    validate_run(specs, tmax, batch_size)
    questions, too_long = fits_context(questions, specs, template)
    owned = experts is None
    experts = experts or {s.name: make_expert(s) for s in specs}
    stats = PrefetchStats(run_id=uuid.uuid4().hex[:12], questions=len(questions))
    stats.skipped = [f"{q.source} row {q.row} ({q.question_id}): {why}" for q, why in too_long]
    try:
        if preflight:  # first: it fills in Ollama digests, which are part of every key
            for s in specs:
                experts[s.name].preflight()
        with Warehouse(root) as wh:
            check_consistent(wh, specs, template)
            known = dict(wh.query_rows("select call_key, answer from stg_calls where status = 'ok'"))
            have_q = {r[0] for r in wh.query_rows("select question_id from stg_questions")}
        new_q = [question_row(q) for q in questions if q.question_id not in have_q]
        write_shard(root, "questions", new_q)
        stats.new_questions = len(new_q)
        writer = ShardWriter(root, "calls", flush_rows=flush_rows)
        tasks_for = TaskMaker(specs, template)
        # calls still missing after each question if every passed-on state turns out reachable
        left = _missing_after(questions, specs, tasks_for, tmax, known)
        bound, done = left[0], 0
        try:
            for start in range(0, len(questions), batch_size):
                batch = questions[start : start + batch_size]
                states: dict[str, set[str | None]] = {q.question_id: {None} for q in batch}
                seen: dict[str, set[str | None]] = {q.question_id: set() for q in batch}
                for _depth in range(tmax):
                    tasks = [
                        tasks_for(q, prev, s)
                        for q in batch
                        for prev in states[q.question_id] - seen[q.question_id]
                        for s in specs
                    ]
                    for q in batch:
                        seen[q.question_id] |= states[q.question_id]
                    todo = [t for t in tasks if t.key not in known]
                    stats.cached += len(tasks) - len(todo)
                    for s in specs:  # grouped by expert: no model swapping on a shared host
                        mine = [t for t in todo if t.spec.name == s.name]
                        done = _run_expert(experts[s.name], mine, writer, template, stats, known, done, bound, progress)
                    nxt: dict[str, set[str | None]] = {q.question_id: set() for q in batch}
                    for t in tasks:
                        if t.key in known:
                            nxt[t.question.question_id].add(passed_on(known[t.key]))
                    states = {qid: nxt[qid] | states[qid] for qid in states}
                    if all(states[qid] <= seen[qid] for qid in states):
                        break  # every reachable state is recorded: deeper steps are cached calls
                writer.flush()
                bound = done + left[min(start + batch_size, len(questions))]
                if progress:
                    progress(done, bound)
        finally:
            writer.flush()
        _write_run(root, stats, specs, template, tmax)
    finally:
        if owned:
            for e in experts.values():
                e.close()
    return stats


def make_task(q: Question, prev: str | None, spec: ExpertSpec, template: PromptTemplate) -> CallTask:
    """The call asking ``spec`` about ``q`` with ``prev`` passed on, with its content address."""
    return TaskMaker([spec], template)(q, prev, spec)


class TaskMaker:
    """Makes the calls of a fixed set of experts whose identities no longer change (after
    preflight has filled in digests): each identity is serialised once, not once per call."""

    def __init__(self, specs: list[ExpertSpec], template: PromptTemplate) -> None:
        self.template = template
        self.identity = {s.name: json.dumps(s.identity(), sort_keys=True) for s in specs}

    def __call__(self, q: Question, prev: str | None, spec: ExpertSpec) -> CallTask:
        prompt = self.template.render(q.text, prev)
        return CallTask(q, prev, spec, prompt, _key(self.identity[spec.name], self.template.version, prompt))


def _missing_after(
    questions: list[Question], specs: list[ExpertSpec], tasks_for: TaskMaker, tmax: int, known: dict[str, str]
) -> list[int]:
    """``left[i]``: calls missing for ``questions[i:]`` if every passed-on state (none, yes, no)
    turns out reachable; one pass, so the progress bound costs one key per possible call."""
    states: list[str | None] = [None] if tmax == 1 else [None, "yes", "no"]
    left = [0] * (len(questions) + 1)
    for i in range(len(questions) - 1, -1, -1):
        q = questions[i]
        left[i] = left[i + 1] + sum(1 for p in states for s in specs if tasks_for(q, p, s).key not in known)
    return left


def _run_expert(
    expert: Expert,
    tasks: list[CallTask],
    writer: ShardWriter,
    template: PromptTemplate,
    stats: PrefetchStats,
    known: dict[str, str],
    done: int,
    bound: int,
    progress: Progress | None,
) -> int:
    if not tasks:
        return done
    spec = expert.spec
    workers = max(1, spec.concurrency) * len(spec.base_urls)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"der-{spec.name}")
    try:
        for task, res in zip(tasks, pool.map(lambda t: expert.call(t.prompt), tasks), strict=True):
            row = call_row(task, res, template, stats.run_id)
            writer.add(row)
            stats.asked += 1
            stats.count(spec.name, res.status)
            if res.status == "ok":
                stats.ok += 1
                known[task.key] = row["answer"]
            else:
                stats.failed += 1
                if len(stats.failures) < 20:
                    stats.failures.append(f"{spec.name} q={task.question.question_id}: {res.error}")
            done += 1
            if progress:
                progress(done, max(bound, done))
    finally:
        # on an interrupt, queued calls are dropped at once (not asked and then thrown away)
        pool.shutdown(wait=False, cancel_futures=True)
    return done


def _write_run(
    root: str | Path, stats: PrefetchStats, specs: list[ExpertSpec], template: PromptTemplate, tmax: int
) -> None:
    """Provenance of this run (no secrets: specs carry only the *name* of an API key variable)."""
    doc = {
        "run_id": stats.run_id,
        "finished_at": datetime.now(UTC).isoformat(),
        "tmax": tmax,
        "template": template.version,
        "experts": [
            {"name": s.name, "fingerprint": s.fingerprint(), **s.identity(), "base_urls": s.base_urls} for s in specs
        ],
        "stats": {k: v for k, v in stats.__dict__.items() if k not in ("failures", "skipped")},
        "failures_sample": stats.failures,
        "skipped": stats.skipped,
    }
    Location(root).write_bytes(f"runs/run-{stats.run_id}.json", json.dumps(doc, indent=2).encode())


def select_questions(
    questions: list[Question],
    offset: int = 0,
    limit: int | None = None,
    partition: str = "all",
    question_ids: Iterable[str] = (),
) -> list[Question]:
    """Pick questions by partition and id, then apply offset and limit (dataset order kept)."""
    ids = set(question_ids)
    if ids:
        missing = ids - {q.question_id for q in questions}
        if missing:
            raise ConfigError(f"question ids not in the dataset: {', '.join(sorted(missing))}")
    picked = [
        q for q in questions if (partition == "all" or q.partition == partition) and (not ids or q.question_id in ids)
    ]
    if offset < 0 or (limit is not None and limit < 0):
        raise ConfigError("offset and limit must be >= 0")
    chosen = picked[offset : None if limit is None else offset + limit]
    if not chosen:
        raise ConfigError(
            f"no questions selected: the dataset has {len(questions)} usable, {len(picked)} match partition "
            f"{partition!r}{' and the given ids' if ids else ''}, and offset {offset} / limit {limit} leave none"
        )
    return chosen
