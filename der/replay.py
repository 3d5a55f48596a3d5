"""Replay arrays: everything the environment and the evaluators need, as dense numpy arrays.

Built once from the warehouse (no HTTP, no embedding model afterwards)::

    answer[q, s, e]   int8   expert e's answer on question q when handed state s (-1: not recorded)
    latency[q, s, e]  float32 wall seconds of that call
    p_yes[q, s, e]    float32 P(yes) on the first answer token (nan where the server gave none)
    tokens[q, s, e]   float32 completion tokens
    obs[q, s, :]      float32 MiniLM embedding of the state text
    label[q]          bool

States ``s`` are the answer handed on: 0 none (first step), 1 yes, 2 no. Answers are coded
0 no, 1 yes, 2 unknown. Only ``ok`` calls are loaded: a failed call is never an answer. A question
is replayable when every state reachable by some chain up to tmax has an ok call for every
expert; questions with a gap are listed in ``incomplete`` and left out, and questions with no
call at all yet are counted in ``unrecorded``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from der.embeddings import MODEL_NAME
from der.errors import WarehouseError
from der.prompts import STATES
from der.store import EMBED_DIM
from der.warehouse import Warehouse

S_NONE, S_YES, S_NO = 0, 1, 2
A_NO, A_YES, A_UNKNOWN, MISSING = 0, 1, 2, -1
ANSWER_NAMES = ("no", "yes", "unknown")
ANSWER_CODE = {name: code for code, name in enumerate(ANSWER_NAMES)}
# state handed on after each answer code: no -> S_NO, yes -> S_YES, unknown -> nothing (S_NONE)
NEXT_STATE = np.array([S_NO, S_YES, S_NONE], dtype=np.int8)


@dataclass
class ReplayData:
    """Dense arrays over the replayable questions (see module docstring)."""

    question_ids: list[str]
    experts: list[str]
    partition: np.ndarray
    label: np.ndarray
    answer: np.ndarray
    latency: np.ndarray
    p_yes: np.ndarray
    tokens: np.ndarray
    obs: np.ndarray | None
    fingerprint: str
    tmax: int
    incomplete: list[str] = field(default_factory=list)
    """Questions with some calls recorded but a reachable call missing or failed."""
    unrecorded: int = 0
    """Questions the warehouse knows but holds no call for yet."""

    @property
    def n_experts(self) -> int:
        return len(self.experts)

    def indices(self, partition: str) -> np.ndarray:
        """Row indices of one partition (``train`` / ``eval``), or all for ``all``."""
        if partition == "all":
            return np.arange(len(self.question_ids))
        return np.flatnonzero(self.partition == partition)

    def correct(self, answers: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Whether answer codes match the labels of ``rows`` (unknown is never correct)."""
        return answers == self.label[rows].astype(np.int8)

    def median_latency(self, rows: np.ndarray) -> np.ndarray:
        """Per-expert median latency of first-step calls over ``rows`` (the cost calibration)."""
        return np.nanmedian(self.latency[rows, S_NONE, :], axis=0)


def reachable_states(answer: np.ndarray, tmax: int) -> np.ndarray:
    """bool[q, s]: which states some chain of length <= tmax hands an expert (before its step)."""
    n = answer.shape[0]
    reach = np.zeros((n, len(STATES)), dtype=bool)
    reach[:, S_NONE] = True
    frontier = reach.copy()
    for _ in range(tmax - 1):
        new = np.zeros_like(reach)
        for s in range(len(STATES)):
            codes = answer[:, s, :]
            live = frontier[:, s][:, None] & (codes >= 0)
            for code, nxt in ((A_NO, S_NO), (A_YES, S_YES), (A_UNKNOWN, S_NONE)):
                new[:, nxt] |= (live & (codes == code)).any(axis=1)
        frontier = new & ~reach
        reach |= new
        if not frontier.any():
            break
    return reach


def load_replay(
    root: str | Path,
    experts: list[str] | None = None,
    tmax: int = 3,
    with_obs: bool = True,
) -> ReplayData:
    """Build :class:`ReplayData` from the warehouse at ``root``.

    :param experts: expert names in action order (default: every recorded expert, sorted).
    :param with_obs: load the state embeddings (run :func:`der.embeddings.ensure_embeddings` first).
    """
    with Warehouse(root, tmax=tmax) as wh:
        # the experts of any attempt are the experts of the deduplicated calls: scan the shards only
        recorded = [r[0] for r in wh.query_rows("select distinct expert from stg_call_attempts order by 1")]
        if not recorded:
            raise WarehouseError(f"{root}: no calls recorded; run `der prefetch` first")
        experts = list(experts) if experts else recorded
        unknown = sorted(set(experts) - set(recorded))
        if unknown:
            raise WarehouseError(f"{root}: experts {unknown} have no recorded calls; recorded: {recorded}")
        # Index mapping happens in SQL: Python only receives integer and float columns.
        wh.con.execute(
            "create temp table q_idx as select question_id, partition, label, "
            "(row_number() over (order by question_id) - 1)::bigint as qi from questions"
        )
        wh.con.execute(
            "create temp table e_idx as select unnest(?::varchar[]) as expert, unnest(range(0, ?))::bigint as ei",
            [experts, len(experts)],
        )
        qs = wh.con.sql("select question_id, partition, label from q_idx order by qi").fetchnumpy()
        # the deduplicating `calls` view is evaluated once; everything below reads this table
        wh.con.execute(
            """
            create temp table r_calls as
            select q.qi, e.ei,
                   case c.prev_answer when 'none' then 0 when 'yes' then 1 else 2 end as si,
                   case c.answer when 'no' then 0 when 'yes' then 1 else 2 end as code,
                   c.latency_s, coalesce(c.p_yes, 'nan'::double) as p_yes,
                   coalesce(c.completion_tokens::double, 'nan'::double) as tokens,
                   c.status = 'ok' as ok, md5_number(c.call_key) as key_hash
            from calls c join q_idx q using (question_id) join e_idx e using (expert)
            """
        )
        calls = wh.con.sql("select qi, ei, si, code, latency_s, p_yes, tokens from r_calls where ok").fetchnumpy()
        attempted = wh.con.sql("select distinct qi from r_calls").fetchnumpy()["qi"]
        # order-free digest of every ok call key loaded (md5 per key, xor-combined: stable, cheap)
        key_digest = wh.con.sql(
            "select count(*), coalesce(bit_xor(key_hash), 0)::varchar from r_calls where ok"
        ).fetchall()[0]
        emb = None
        if with_obs:
            emb = wh.con.sql(
                f"""
                select q.qi, case e.prev_answer when 'none' then 0 when 'yes' then 1 else 2 end as si, e.embedding
                from stg_embedding_rows e join q_idx q using (question_id) where e.model = '{MODEL_NAME}'
                """
            ).to_arrow_table()  # not the deduplicating view: a repeated state is the same text, the same vector
    qids = [str(x) for x in qs["question_id"]]
    n, e = len(qids), len(experts)
    answer = np.full((n, 3, e), MISSING, dtype=np.int8)
    latency = np.full((n, 3, e), np.nan, dtype=np.float32)
    p_yes = np.full((n, 3, e), np.nan, dtype=np.float32)
    tokens = np.full((n, 3, e), np.nan, dtype=np.float32)
    at = (calls["qi"], calls["si"], calls["ei"])
    answer[at] = calls["code"]
    latency[at] = calls["latency_s"]
    p_yes[at] = calls["p_yes"]
    tokens[at] = calls["tokens"]

    reach = reachable_states(answer, tmax)
    complete = ~((reach[:, :, None]) & (answer == MISSING)).any(axis=(1, 2))
    recorded_q = np.zeros(n, dtype=bool)
    recorded_q[attempted] = True
    obs = None
    if emb is not None:
        # zeros where no state was embedded (unreachable states); a mask, not NaN, marks what is
        # present, so 3 M x 384 floats are never scanned for NaN (B8)
        obs = np.zeros((n, 3, EMBED_DIM), dtype=np.float32)
        have = np.zeros((n, 3), dtype=bool)
        for batch in emb.to_batches():  # chunk by chunk: the vectors are never concatenated
            at_emb = (batch.column("qi").to_numpy(), batch.column("si").to_numpy())
            obs[at_emb] = batch.column("embedding").flatten().to_numpy().reshape(-1, EMBED_DIM)
            have[at_emb] = True
        del emb
        missing_obs = ~have & reach
        if missing_obs.any():
            raise WarehouseError(
                f"{root}: {int(missing_obs.any(axis=1).sum())} questions lack state embeddings; "
                "run `der embed` (or `der pipeline`, which embeds what is missing)"
            )

    keep = np.flatnonzero(complete)
    sel = slice(None) if len(keep) == n else keep  # nothing left out: no copies of the (large) arrays
    incomplete = [qids[i] for i in np.flatnonzero(~complete & recorded_q)]
    fingerprint = hashlib.sha256("\n".join([*experts, *map(str, key_digest)]).encode()).hexdigest()[:16]
    return ReplayData(
        question_ids=[qids[i] for i in keep],
        experts=experts,
        partition=np.asarray(qs["partition"], dtype=object)[sel].astype(str),
        label=np.asarray(qs["label"], dtype=bool)[sel],
        answer=answer[sel],
        latency=latency[sel],
        p_yes=p_yes[sel],
        tokens=tokens[sel],
        obs=None if obs is None else obs[sel],
        fingerprint=fingerprint,
        tmax=tmax,
        incomplete=incomplete,
        unrecorded=int((~recorded_q).sum()),
    )
