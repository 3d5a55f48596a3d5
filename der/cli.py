"""The ``der`` command line: one typed config per subcommand (tyro turns field docstrings into --help)."""

from __future__ import annotations

import errno
import logging
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import tyro

from der.errors import DerError
from der.pipeline import PipelineConfig
from der.train import TrainConfig

DEFAULT_WAREHOUSE = "warehouse/data"
"""A folder, or an fsspec URL (s3://bucket/warehouse) for a shared warehouse."""


@dataclass
class Prefetch:
    """Record every expert under every KTP chain up to tmax into the warehouse (resumable)."""

    experts: str = "reference-ollama"
    """Experts TOML file, or a bundled config: reference-ollama, llama-local."""
    warehouse: str = DEFAULT_WAREHOUSE
    """Warehouse root (Parquet shards); created if missing."""
    dataset: str = "boolq"
    """boolq (bundled dev split), a .jsonl/.jsonl.gz/.parquet file, or hf:<id>[:split]."""
    limit: int | None = None
    """Record at most this many questions (after --offset and --partition)."""
    offset: int = 0
    """Skip this many questions first (in dataset order)."""
    partition: Literal["all", "train", "eval"] = "all"
    """Only questions of this router partition."""
    question_ids: tuple[str, ...] = ()
    """Only these question ids."""
    tmax: int = 3
    """Longest chain to record."""
    template: str = "ref-v1"
    """Prompt template version."""
    batch_size: int = 25
    """Questions walked to full depth before the next batch (an interrupted run keeps whole questions)."""
    on_bad_rows: Literal["error", "skip"] = "error"
    """Stop at the first bad dataset row, or skip bad rows and list them."""


def run_prefetch(args: Prefetch) -> int:
    from der.config import load_experts
    from der.data import load_questions
    from der.prefetch import prefetch, select_questions, validate_run
    from der.progress import Bar
    from der.prompts import get_template

    specs = load_experts(args.experts)
    validate_run(specs, args.tmax, args.batch_size)
    template = get_template(args.template)
    loaded = load_questions(args.dataset, on_bad=args.on_bad_rows)
    for s in loaded.skipped:
        print(f"skipped {s.source} row {s.row}: {s.reason}", file=sys.stderr)
    questions = select_questions(loaded.questions, args.offset, args.limit, args.partition, args.question_ids)
    print(f"prefetch: {len(questions)} questions x {len(specs)} experts, tmax {args.tmax} -> {args.warehouse}")
    with Bar("calls", unit="call") as bar:
        stats = prefetch(
            questions, specs, args.warehouse, template, tmax=args.tmax, batch_size=args.batch_size, progress=bar.update
        )
    print(
        f"done: {stats.asked} calls asked ({stats.ok} ok, {stats.failed} failed), {stats.cached} already cached, "
        f"{stats.new_questions} new questions; run {stats.run_id}"
    )
    for f in stats.failures:
        print(f"  failed: {f}", file=sys.stderr)
    for skip in stats.skipped:
        print(f"  skipped: {skip}", file=sys.stderr)
    return 0 if stats.failed == 0 else 3


@dataclass
class Sql:
    """Run one read-only SQL query over the warehouse views (questions, calls, chains, ...)."""

    query: tyro.conf.Positional[str] = "select * from coverage"
    """The query; `der sql "show tables"` lists the views."""
    warehouse: str = DEFAULT_WAREHOUSE
    """Warehouse root (a folder or an fsspec URL)."""
    format: Literal["table", "csv", "json"] = "table"
    """table (aligned, --max-rows), csv, or json (JSON lines: one object per row)."""
    tmax: int = 3
    """Longest chain expanded by the `chains` view."""
    max_rows: int = 100
    """Rows shown in table format (csv and json lines print all)."""


def run_sql(args: Sql) -> int:
    import duckdb

    from der.errors import WarehouseError
    from der.sqlout import print_interruptibly
    from der.warehouse import Warehouse

    if args.max_rows < 1:
        raise DerError(f"--max-rows must be at least 1 (got {args.max_rows}); use --format csv for every row")
    _require_warehouse(args.warehouse)
    with Warehouse(args.warehouse, tmax=args.tmax) as wh:
        try:
            print_interruptibly(wh.con, wh.user_query(args.query), args.format, args.max_rows)
        except duckdb.Error as e:  # raised while the query runs (a bad cast, a refused file, ...)
            raise WarehouseError(f"query failed: {e}") from e
    return 0


@dataclass
class Embed:
    """Compute the MiniLM state embeddings the warehouse lacks (the pipeline does this too)."""

    warehouse: str = DEFAULT_WAREHOUSE
    """Warehouse root (a folder, or an fsspec URL such as s3://bucket/der)."""


def run_embed(args: Embed) -> int:
    from der.embeddings import ensure_embeddings

    _require_warehouse(args.warehouse)
    print(f"embedded {ensure_embeddings(args.warehouse)} new states")
    return 0


@dataclass
class Train:
    """Train a PPO router on the recorded behaviour and save it (router.zip + router.json)."""

    warehouse: str = DEFAULT_WAREHOUSE
    """Warehouse root (a folder, or an fsspec URL such as s3://bucket/der)."""
    out: Path = Path("reports/latest/router")
    """Folder for router.zip and router.json."""
    experts: tuple[str, ...] = ()
    """Experts in action order (default: every recorded expert)."""
    train: tyro.conf.OmitArgPrefixes[TrainConfig] = field(default_factory=TrainConfig)


def run_train(args: Train) -> int:
    import time

    from der.pipeline import PipelineConfig, check_warehouse, load_data
    from der.train import train_router

    t0 = time.perf_counter()
    args.train.validate()
    check_warehouse(args.warehouse, args.train.reward.tmax)
    data = load_data(PipelineConfig(warehouse=args.warehouse, experts=args.experts, train=args.train))
    result = train_router(data, args.train, progress=sys.stderr.isatty())
    result.router.save(args.out)
    print(
        f"trained {args.train.steps} PPO steps on {result.router.meta['train_questions']} questions in "
        f"{result.train_time_sec:.1f} s (process {time.perf_counter() - t0:.1f} s) -> {args.out}"
    )
    return 0


@dataclass
class Pipeline:
    """Train a router from the recording, evaluate every baseline and the router, write the report."""

    cfg: tyro.conf.OmitArgPrefixes[PipelineConfig] = field(default_factory=PipelineConfig)


def run_pipeline_cmd(args: Pipeline) -> int:
    from der.pipeline import run_pipeline
    from der.report import results_table

    report = run_pipeline(args.cfg, progress=sys.stderr.isatty())
    for protocol, rows in report["end_results_eval"].items():
        print(f"\n## {protocol}: {report['protocols'][protocol]}\n")
        print(results_table(rows))
    front = report.get("frontier")
    if front:
        print("\n## learned-stop cost-accuracy frontier: area under each method's curve (higher is better)\n")
        for fam, auf in front["area_under_frontier"].items():
            on = any(p["on_frontier"] for p in front["points"] if p["family"] == fam)
            print(f"- {fam}: {auf:.3f}{'  (on the Pareto frontier)' if on else ''}")
    print(
        f"\ntrain {report['train_time_sec']:.1f} s; wrote {args.cfg.out}/report.json, report.md, report.html "
        "and figures/"
    )
    return 0


@dataclass
class Ask:
    """Route a question through the experts with a trained router, printing every step.

    With no question, asks interactively (commands: /passage TEXT, /help, /quit)."""

    question: tyro.conf.Positional[str | None] = None
    """The yes/no question (omit for interactive mode)."""
    passage: str = ""
    """Passage the question is about."""
    router: Path = Path("reports/demo/router-stop")
    """Folder with router.zip and router.json (from `der train` or `der pipeline`)."""
    experts: str = "llama-local"
    """Experts TOML file or bundled config; names must match the router's experts."""
    replay: bool = False
    """Answer from the warehouse's recording instead of calling the experts."""
    question_id: str | None = None
    """With --replay: the warehouse question id to route."""
    warehouse: str = "warehouse/recording"
    """Warehouse for --replay."""
    template: str = "ref-v1"
    """Prompt template version (as the router's recording used)."""
    json: bool = False
    """Print one JSON document per question."""


def run_ask(args: Ask) -> int:
    import json

    from der.ask import Asker, format_result
    from der.router import Router

    router = Router.load(args.router)
    if args.replay:
        asker = Asker(router, warehouse=args.warehouse)
    else:
        from der.config import load_experts
        from der.experts import make_expert
        from der.prompts import get_template

        specs = {s.name: s for s in load_experts(args.experts)}
        missing = [e for e in router.experts if e not in specs]
        if missing:
            raise DerError(f"the router routes over {router.experts}; {args.experts} lacks {missing}")
        experts = {name: make_expert(specs[name]) for name in router.experts}
        for expert in experts.values():
            expert.preflight()
        asker = Asker(router, experts, get_template(args.template))

    def answer(question: str, passage: str) -> None:
        res = asker.replay(question, passage, args.question_id) if args.replay else asker.ask(question, passage)
        print(json.dumps(res.as_dict(), ensure_ascii=False) if args.json else format_result(res), flush=True)

    if args.question is not None or args.question_id is not None:
        answer(args.question or "", args.passage)
        return 0
    passage = args.passage
    print("der ask: type a yes/no question; /passage TEXT sets the passage, /help, /quit", flush=True)
    while True:
        try:
            line = input("You> ").strip()
        except EOFError:
            return 0
        if line in ("/quit", "/exit"):
            return 0
        if line == "/help":
            print("/passage TEXT  set the passage for the next questions\n/quit          leave")
        elif line.startswith("/passage"):
            passage = line[len("/passage") :].strip()
            print(f"passage set ({len(passage)} characters)")
        elif line:
            try:
                answer(line, passage)
            except DerError as e:
                print(f"error: {e}")


@dataclass
class Report:
    """Re-render report.md and report.html of a pipeline run, or compare two runs side by side."""

    run: tyro.conf.Positional[Path] = Path("reports/demo")
    """Folder of a pipeline run (holds report.json and figures/)."""
    compare: tuple[Path, Path] | None = None
    """Two run folders to compare (RUN is then not used): writes compare.html into --out."""
    out: Path = Path("reports")
    """Folder where --compare writes compare.html (created if missing)."""


def run_report(args: Report) -> int:
    import json

    from der.report import write_report
    from der.report_html import render_compare

    def load(folder: Path) -> dict:
        path = folder / "report.json"
        if not path.exists():
            raise DerError(f"{path} not found: run `der pipeline --out {folder}` first")
        redo = f"re-run `der pipeline --out {folder}`"
        try:
            report = json.loads(path.read_text())
        except ValueError as e:
            raise DerError(f"{path} is not valid JSON ({e}); {redo}") from e
        if not isinstance(report, dict) or "end_results_eval" not in report:
            raise DerError(f"{path} is not a der report (it has no end_results_eval); {redo}")
        return report

    if args.compare:
        a, b = args.compare
        if args.out.exists() and not args.out.is_dir():
            raise DerError(f"--out {args.out} is a file; give a folder for compare.html")
        args.out.mkdir(parents=True, exist_ok=True)
        out = args.out / "compare.html"
        out.write_text(render_compare(load(a), load(b), str(a), str(b)))
        print(f"wrote {out}")
        return 0
    figures = {p.stem: p for p in sorted((args.run / "figures").glob("*.png"))}
    write_report(load(args.run), args.run, figures)
    print(f"wrote {args.run}/report.md and report.html ({len(figures)} figures)")
    return 0


@dataclass
class Compact:
    """Merge each table's shards into one (safe while other processes read or append)."""

    warehouse: str = DEFAULT_WAREHOUSE
    """Warehouse root (a folder, or an fsspec URL such as s3://bucket/der)."""


def run_compact(args: Compact) -> int:
    from der.store import TABLES, compact

    _require_warehouse(args.warehouse)
    for table in TABLES:
        shards, rows = compact(args.warehouse, table)
        print(f"{table}: {shards} shards -> {min(shards, 1)} ({rows} rows)")
    return 0


def _require_warehouse(root: str) -> None:
    from der.store import Location

    if not Location(root).exists():
        raise DerError(
            f"warehouse {root} does not exist: record into it with `der prefetch --warehouse {root}`, "
            "or use the bundled recording: --warehouse warehouse/recording"
        )


COMMANDS = {
    "prefetch": (Prefetch, run_prefetch),
    "sql": (Sql, run_sql),
    "embed": (Embed, run_embed),
    "train": (Train, run_train),
    "pipeline": (Pipeline, run_pipeline_cmd),
    "ask": (Ask, run_ask),
    "report": (Report, run_report),
    "compact": (Compact, run_compact),
}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``der`` console script."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # SIGTERM (a scheduler cancelling a run, `kill`) stops like Ctrl-C: buffered rows are written first
    signal.signal(signal.SIGTERM, _interrupt)
    args = tyro.extras.subcommand_cli_from_dict({k: v[0] for k, v in COMMANDS.items()}, args=argv, prog="der")
    for cls, fn in COMMANDS.values():
        if isinstance(args, cls):
            try:
                return fn(args)
            except DerError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                print(
                    f"error: disk full ({e}); free space and run the same command again: every shard "
                    "published so far is kept and only missing work is redone",
                    file=sys.stderr,
                )
                return 2
            except KeyboardInterrupt:
                print("interrupted: everything written so far is kept; run the same command to resume", file=sys.stderr)
                return 130
    raise AssertionError(f"no handler for {type(args).__name__}")


if __name__ == "__main__":
    sys.exit(main())
