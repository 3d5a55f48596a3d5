"""`der ask`: route one question through real experts with a trained router, step by step.

Live mode renders the same prompts as prefetch, asks the configured experts over HTTP and embeds
each state with MiniLM, exactly as the router saw states in training. ``replay`` mode answers
from the warehouse instead, for questions it holds. Nothing here reads a label: a STOP router
stops itself, a router without STOP runs tmax steps (the fixed-budget protocol).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from der.answers import parse_answer
from der.data import Question, question_id, question_text
from der.embeddings import embed, load_model, state_text
from der.errors import ConfigError, DerError
from der.evaluate import STOP, Context, no_repeat, router_picker
from der.experts import Expert
from der.prefetch import make_task
from der.prompts import STATES, PromptTemplate, passed_on
from der.replay import ANSWER_CODE, ANSWER_NAMES, MISSING, NEXT_STATE, ReplayData, load_replay
from der.router import Router
from der.warehouse import Warehouse


@dataclass
class AskStep:
    """One step of a routed question."""

    t: int
    expert: str
    handed: str
    answer: str | None
    p_yes: float | None
    latency_s: float
    status: str = "ok"
    error: str | None = None
    raw_text: str | None = None


@dataclass
class AskResult:
    """A routed question: its steps and the final answer (None when no expert answered)."""

    question_id: str
    question: str
    steps: list[AskStep] = field(default_factory=list)
    final: str | None = None
    source: str = "live"
    stopped_by: str = "tmax"

    def as_dict(self) -> dict[str, Any]:
        return {
            "question_id": self.question_id,
            "question": self.question,
            "source": self.source,
            "final_answer": self.final,
            "stopped_by": self.stopped_by,
            "steps": [s.__dict__ for s in self.steps],
            "total_latency_s": sum(s.latency_s for s in self.steps),
        }


def _single(router: Router, obs: np.ndarray) -> ReplayData:
    """A one-question ReplayData whose answers fill in as live calls return."""
    e = len(router.experts)
    return ReplayData(
        question_ids=["live"],
        experts=router.experts,
        partition=np.array(["eval"]),
        label=np.zeros(1, dtype=bool),
        answer=np.full((1, 3, e), MISSING, dtype=np.int8),
        latency=np.full((1, 3, e), np.nan, dtype=np.float32),
        p_yes=np.full((1, 3, e), np.nan, dtype=np.float32),
        tokens=np.full((1, 3, e), np.nan, dtype=np.float32),
        obs=obs[None],
        fingerprint="live",
        tmax=router.obs_spec.tmax,
    )


def _route(router: Router, data: ReplayData, row: int, answer_step: Any) -> tuple[list[AskStep], str]:
    """Drive the router's picker one question at a time; ``answer_step(s, a)`` makes the call."""
    pick = router_picker(router)
    rows = np.array([row])
    tmax = router.obs_spec.tmax
    s, prev_a, prev_s = np.zeros(1, np.int64), np.full(1, -1, np.int64), np.zeros(1, np.int64)
    answers = np.full((1, tmax), -1, np.int64)
    steps: list[AskStep] = []
    for t in range(tmax):
        a = int(pick(Context(data, rows, t, s, prev_a, prev_s, answers, allow_stop=True))[0])
        if a == STOP:
            return steps, "router"
        a = int(no_repeat(np.array([a]), prev_a, len(router.experts))[0])  # as the router was trained
        step = answer_step(t, int(s[0]), a)
        steps.append(step)
        if step.status != "ok":
            return steps, "failure"
        code = ANSWER_CODE[step.answer or "unknown"]
        answers[0, t] = code
        prev_a[0], prev_s[0], s[0] = a, s[0], int(NEXT_STATE[code])
    return steps, "tmax"


class Asker:
    """Routes questions live through ``experts`` (or from a warehouse) with ``router``."""

    def __init__(
        self,
        router: Router,
        experts: dict[str, Expert] | None = None,
        template: PromptTemplate | None = None,
        warehouse: str | None = None,
    ) -> None:
        self.router, self.experts, self.template, self.warehouse = router, experts or {}, template, warehouse
        self._model: Any = None
        self._replay: ReplayData | None = None

    def ask(self, question: str, passage: str = "") -> AskResult:
        """Route live: embed the states, ask the router's experts, stop when it says so."""
        if not self.experts or self.template is None:
            raise ConfigError("live routing needs experts and a template; use replay for recorded questions")
        question, passage = question.strip(), passage.strip()
        if not question:
            raise ConfigError("empty question")
        text = question_text(question, passage)
        self._model = self._model or load_model()
        obs = embed([state_text(text, st) for st in STATES], self._model)
        data = _single(self.router, obs)
        q = Question(question_id(question, passage), question, passage, False, "eval", "ask", 0)

        def call(t: int, s: int, a: int) -> AskStep:
            name = self.router.experts[a]
            expert = self.experts[name]
            handed = None if s == 0 else STATES[s]
            task = make_task(q, passed_on(handed), expert.spec, self.template)
            res = expert.call(task.prompt)
            answer = parse_answer(res.raw_text) if res.status == "ok" else None
            if answer is not None:
                data.answer[0, s, a] = ANSWER_CODE[answer]
                data.p_yes[0, s, a] = np.nan if res.p_yes is None else res.p_yes
            return AskStep(t, name, STATES[s], answer, res.p_yes, res.latency_s, res.status, res.error, res.raw_text)

        steps, why = _route(self.router, data, 0, call)
        return self._result(q.question_id, question, steps, why, "live")

    def replay(self, question: str, passage: str = "", qid: str | None = None) -> AskResult:
        """Route a question the warehouse holds, from its recorded answers and latencies."""
        if self.warehouse is None:
            raise ConfigError("replay needs --warehouse")
        if self._replay is None:
            self._replay = load_replay(self.warehouse, self.router.experts, tmax=self.router.obs_spec.tmax)
        data = self._replay
        with Warehouse(self.warehouse) as wh:
            qid = qid or self._find(wh, question, passage)
            known = wh.query_rows("select question from questions where question_id = ?", [qid])
            texts = {
                (e, prev): raw
                for e, prev, raw in wh.query_rows(
                    "select expert, prev_answer, raw_text from calls where question_id = ? and status = 'ok'", [qid]
                )
            }
        if qid not in data.question_ids:
            raise DerError(
                f"question {qid} is not replayable from {self.warehouse} "
                f"({'recorded, but some call it needs is missing or failed' if known else 'not recorded'}); "
                'give --question-id of a recorded question (`der sql "select question_id, question from '
                'questions"`), or ask live'
            )
        row = data.question_ids.index(qid)
        question = known[0][0]  # as recorded

        def recorded(t: int, s: int, a: int) -> AskStep:
            code = int(data.answer[row, s, a])
            if code == MISSING:
                raise DerError(f"question {qid}: no recorded call for {data.experts[a]} handed {STATES[s]}")
            p = float(data.p_yes[row, s, a])
            return AskStep(
                t,
                data.experts[a],
                STATES[s],
                ANSWER_NAMES[code],
                None if np.isnan(p) else p,
                float(data.latency[row, s, a]),
                raw_text=texts.get((data.experts[a], STATES[s])),
            )

        steps, why = _route(self.router, data, row, recorded)
        return self._result(qid, question, steps, why, "replay")

    @staticmethod
    def _find(wh: Any, question: str, passage: str) -> str:
        """The id of a recorded question: by question and passage, or by the question text alone."""
        qid = question_id(question.strip(), passage.strip())
        if passage.strip():
            return qid
        rows = wh.query_rows(
            "select question_id from questions where lower(trim(question)) = lower(?) order by question_id",
            [question.strip()],
        )
        if len(rows) > 1:
            raise DerError(
                f"{len(rows)} recorded questions read {question!r} (different passages): give --question-id, "
                f"one of {', '.join(r[0] for r in rows)}"
            )
        return rows[0][0] if rows else qid

    def _result(self, qid: str, question: str, steps: list[AskStep], why: str, source: str) -> AskResult:
        final = steps[-1].answer if steps and steps[-1].status == "ok" else None
        return AskResult(qid, question, steps, final, source, why)


def format_result(res: AskResult) -> str:
    """Human-readable lines: one per step, then the final answer."""
    lines = []
    for st in res.steps:
        conf = "" if st.p_yes is None else f"  P(yes) {st.p_yes:.2f}"
        if st.status == "ok":
            lines.append(
                f"  t={st.t} {st.expert:<22} handed {st.handed:<4} -> {st.answer:<7} {st.latency_s:6.2f} s{conf}"
            )
        else:
            lines.append(f"  t={st.t} {st.expert:<22} FAILED: {st.error}")
    total = sum(s.latency_s for s in res.steps)
    final = res.final or "no answer"
    calls = f"{len(res.steps)} call{'' if len(res.steps) == 1 else 's'}"
    lines.append(f"answer: {final}  ({calls}, {total:.2f} s, stopped by {res.stopped_by}, {res.source})")
    return "\n".join(lines)
