"""Live chains: ask real experts step by step, exactly as prefetch would, and record each call.

A live step renders the same prompt and computes the same content-addressed key as prefetch, so
a live run and a replay of the recording agree by construction, and every live call also grows
the warehouse (pass a writer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from der.answers import parse_answer
from der.data import Question
from der.experts import Expert
from der.prefetch import NONE, call_row, make_task
from der.prompts import PromptTemplate, passed_on
from der.store import ShardWriter


@dataclass
class LiveStep:
    """One live call in a chain."""

    t: int
    expert: str
    handed: str
    status: str
    answer: str | None
    raw_text: str | None
    latency_s: float
    p_yes: float | None
    error: str | None


def run_chain(
    question: Question,
    experts: dict[str, Expert],
    pick: Callable[[int, list[LiveStep]], str | None],
    template: PromptTemplate,
    tmax: int,
    writer: ShardWriter | None = None,
    run_id: str = "live",
) -> list[LiveStep]:
    """Ask ``pick(t, steps_so_far)``'s expert at each step until it returns None, tmax is
    reached, or a call fails (a failure ends the chain: no answer is made up)."""
    steps: list[LiveStep] = []
    handed: str | None = None
    for t in range(tmax):
        name = pick(t, steps)
        if name is None:
            break
        expert = experts[name]
        task = make_task(question, handed, expert.spec, template)
        res = expert.call(task.prompt)
        if writer is not None:
            writer.add(call_row(task, res, template, run_id))
        answer = parse_answer(res.raw_text) if res.status == "ok" else None
        steps.append(
            LiveStep(t, name, handed or NONE, res.status, answer, res.raw_text, res.latency_s, res.p_yes, res.error)
        )
        if res.status != "ok":
            break
        handed = passed_on(answer)
    return steps
