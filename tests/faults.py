"""Fault-injection trials shared by the default suite (few trials) and the soak (many).

Every trial checks the invariants after it ran:

- no published shard is corrupt (every ``part-*.parquet`` reads);
- no key is duplicated in the ``calls`` view;
- every call acknowledged as written (in a published shard) before a crash is still there, with
  the same answer;
- failed calls are rows with a status and an error, never answers;
- the training data (replay arrays) never contains a failed call;
- once re-run to completion, the warehouse equals one recorded without faults (same answer for
  every key).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from der.config import parse_experts
from der.data import load_questions
from der.prefetch import prefetch
from der.prompts import get_template
from der.replay import load_replay
from der.store import list_shards
from der.warehouse import Warehouse
from tests.loopback import LoopbackExpertServer

ROOT = Path(__file__).parents[1]
MODELS = ["alpha:1b", "beta:3b"]
TEMPLATE = get_template("ref-v1")


@dataclass
class Tally:
    """Figures for docs/reliability.md."""

    trials: int = 0
    survived: int = 0
    faults: Counter = field(default_factory=Counter)
    kills: int = 0
    rows_lost: int = 0
    duplicates: int = 0
    corrupt_shards_read: int = 0
    failed_as_answers: int = 0
    failed_in_training: int = 0
    mismatches: int = 0


def config_text(base: str, **extra: str) -> str:
    lines = [f"[defaults]\nbackend = 'ollama'\nbase_url = '{base}'\nbackoff_s = [0.01, 0.02, 0.04]\n"]
    lines += [f"{k} = {v}\n" for k, v in extra.items()]
    for m in MODELS:
        lines.append(f"[[experts]]\nname = '{m.split(':')[0]}'\nmodel = '{m}'\n")
    return "".join(lines)


def specs_for(base: str) -> list:
    return parse_experts(
        {
            "defaults": {"base_url": base, "backoff_s": [0.01, 0.02, 0.04]},
            "experts": [{"name": m.split(":")[0], "model": m} for m in MODELS],
        }
    )


def answers(root: Path) -> dict[str, str]:
    """call_key -> answer over ok calls (the 'acknowledged' content)."""
    if not root.exists():
        return {}
    with Warehouse(root) as wh:
        return dict(wh.query_rows("select call_key, answer from calls where status = 'ok'"))


def reference(tmp: Path, n_questions: int, tmax: int) -> dict[str, str]:
    """The warehouse content of a run without faults."""
    with LoopbackExpertServer(MODELS) as srv:
        prefetch(
            load_questions(limit=n_questions).questions, specs_for(srv.base), tmp / "reference", TEMPLATE, tmax=tmax
        )
    return answers(tmp / "reference")


def check(
    root: Path, expected: dict[str, str] | None, tally: Tally, before: dict[str, str] | None = None, tmax: int = 3
) -> None:
    """Apply the invariants; count every violation in ``tally``."""
    for shard in list_shards(root, "calls"):
        try:
            pq.read_table(shard)
        except Exception:  # any read error is a corrupt published shard
            tally.corrupt_shards_read += 1
    with Warehouse(root) as wh:
        # one answer per (question, expert, handed answer), and no key answered two ways
        tally.duplicates += wh.query_rows(
            "select count(*) - count(distinct (question_id, expert, prev_answer)) from calls"
        )[0][0]
        tally.duplicates += sum(wh.data_tests()[t] for t in ("consistent_answers", "unique_call_state"))
        tally.failed_as_answers += wh.query_rows(
            "select count(*) from calls where status = 'failed' and (answer is not null or error is null)"
        )[0][0]
        n_failed = wh.query_rows("select count(*) from calls where status = 'failed'")[0][0]
    now = answers(root)
    if before:
        tally.rows_lost += sum(1 for k, a in before.items() if now.get(k) != a)
    if n_failed or now:
        tally.failed_in_training += _training_violations(root, tmax)
    if expected is not None:
        tally.mismatches += sum(1 for k, a in expected.items() if now.get(k) != a)
        tally.mismatches += sum(1 for k in now if k not in expected)


def _training_violations(root: Path, tmax: int) -> int:
    """Cells of the replay arrays not backed by an ok call with that answer, plus kept questions
    with a reachable cell missing (a failed call must leave its question out)."""
    from der.replay import ANSWER_NAMES, STATES, reachable_states

    data = load_replay(root, tmax=tmax, with_obs=False)
    with Warehouse(root) as wh:
        ok = {
            (q, e, p): a
            for q, e, p, a in wh.query_rows(
                "select question_id, expert, prev_answer, answer from calls where status = 'ok'"
            )
        }
    bad = 0
    reach = reachable_states(data.answer, tmax)
    for row, qid in enumerate(data.question_ids):
        for s, state in enumerate(STATES):
            for e, name in enumerate(data.experts):
                code = int(data.answer[row, s, e])
                if code >= 0 and ok.get((qid, name, state)) != ANSWER_NAMES[code]:
                    bad += 1
                if code < 0 and reach[row, s]:
                    bad += 1
    return bad


def random_fault_trial(
    tmp: Path, expected: dict[str, str], n_questions: int, tmax: int, seed: int, tally: Tally, fault_rate: float = 0.35
) -> None:
    """Prefetch against a server that fails at random, then re-run until complete."""
    root = tmp / f"faults-{seed}"
    qs = load_questions(limit=n_questions).questions
    tally.trials += 1
    with LoopbackExpertServer(MODELS, fault_rate=fault_rate, seed=seed) as srv:
        specs = specs_for(srv.base)
        for spec in specs:
            spec.read_timeout_s = 1.0  # the 'slow' fault (1.5 s) becomes a read timeout
            spec.retries = 1
        for _ in range(30):
            srv.up.wait(5)  # after an outage, re-run once the server listens again (as a user would)
            stats = prefetch(qs, specs, root, TEMPLATE, tmax=tmax)
            check(root, None, tally, tmax=tmax)
            if stats.failed == 0:
                break
        tally.faults.update(srv.faults_injected)
    before = answers(root)
    check(root, expected, tally, before, tmax=tmax)
    tally.survived += 1


def kill_trial(tmp: Path, expected: dict[str, str], n_questions: int, tmax: int, seed: int, tally: Tally) -> None:
    """Start `der prefetch`, SIGKILL it at a random moment, check, re-run to completion, check."""
    rng = random.Random(seed)
    root = tmp / f"kill-{seed}"
    tally.trials += 1
    with LoopbackExpertServer(MODELS, delay_s=0.004) as srv:
        cfg = tmp / f"experts-{seed}.toml"
        cfg.write_text(config_text(srv.base))
        cmd = [
            sys.executable,
            "-m",
            "der.cli",
            "prefetch",
            "--experts",
            str(cfg),
            "--warehouse",
            str(root),
            "--limit",
            str(n_questions),
            "--tmax",
            str(tmax),
            "--batch-size",
            "3",
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.8, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        tally.kills += 1
        before = answers(root)
        check(root, None, tally, tmax=tmax)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    check(root, expected, tally, before, tmax=tmax)
    tally.survived += 1


def concurrent_trial(tmp: Path, expected: dict[str, str], n_questions: int, tmax: int, tally: Tally) -> None:
    """Two `der prefetch` processes on the same warehouse at once."""
    root = tmp / "concurrent"
    tmp.mkdir(parents=True, exist_ok=True)
    tally.trials += 1
    with LoopbackExpertServer(MODELS, delay_s=0.002) as srv:
        cfg = tmp / "experts-concurrent.toml"
        cfg.write_text(config_text(srv.base))
        cmd = [
            sys.executable,
            "-m",
            "der.cli",
            "prefetch",
            "--experts",
            str(cfg),
            "--warehouse",
            str(root),
            "--limit",
            str(n_questions),
            "--tmax",
            str(tmax),
            "--batch-size",
            "2",
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        procs = [
            subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        for p in procs:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err[-2000:]
    check(root, expected, tally, tmax=tmax)
    tally.survived += 1


def write_doc(path: Path, tally: Tally, seconds: float) -> None:
    """Rewrite the figures block of docs/reliability.md."""
    import re

    rows = "\n".join(f"| {k} | {v} |" for k, v in sorted(tally.faults.items()))
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    block = (
        "<!-- figures:begin -->\n"
        f"Soak run: {tally.trials} trials in {seconds:.0f} s ({stamp}).\n\n"
        "| figure | value |\n|---|---:|\n"
        f"| trials run | {tally.trials} |\n| trials survived (completed, all invariants hold) | {tally.survived} |\n"
        f"| prefetch processes killed with SIGKILL | {tally.kills} |\n"
        f"| injected faults, all kinds | {sum(tally.faults.values())} |\n"
        f"| rows lost (acknowledged, then missing or changed) | {tally.rows_lost} |\n"
        f"| duplicate keys in `calls` | {tally.duplicates} |\n| corrupt shards read | {tally.corrupt_shards_read} |\n"
        f"| failed calls stored as answers | {tally.failed_as_answers} |\n"
        f"| failed calls in the training arrays | {tally.failed_in_training} |\n"
        f"| keys whose final answer differs from a fault-free run | {tally.mismatches} |\n\n"
        "Faults injected by kind:\n\n| fault | injected |\n|---|---:|\n" + rows + "\n<!-- figures:end -->"
    )
    text = path.read_text()
    path.write_text(re.sub(r"<!-- figures:begin -->.*?<!-- figures:end -->", lambda _: block, text, flags=re.S))
