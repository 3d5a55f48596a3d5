"""BoolQ questions: loading, label normalisation, stable ids and the train/eval partition.

Sources (``load_questions(source)``):

- ``boolq`` (default): the official BoolQ dev split bundled in ``der/datasets/boolq`` (CC BY-SA 3.0).
- a local ``.jsonl``, ``.jsonl.gz`` or ``.parquet`` file with ``question``, ``passage`` and
  ``answer`` (or ``label``) fields, plus an optional ``title``.
- ``hf:<dataset id>[:<split>]``: a Parquet-backed Hugging Face dataset through ``datasets``
  (``hf:google/boolq:validation``); ``trust_remote_code`` is never enabled.

Only the dev split is available offline, so router-train and router-eval are both carved out of
the loaded questions by a hash of the question id: a question lands in ``eval`` when
``int(question_id[:8], 16) % 3 == 0`` (one third, the reference's 600/300 train/eval ratio) and in
``train`` otherwise. The partition depends on the question's content alone, so it is the same on
every machine, for every subset and in every order.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from der.errors import DataError

BUNDLED = "boolq"
EVAL_MODULUS = 3
Partition = Literal["train", "eval"]


@dataclass(frozen=True)
class Question:
    """One yes/no question with its passage and gold label."""

    question_id: str
    question: str
    passage: str
    label: bool
    partition: Partition
    source: str
    row: int

    @property
    def text(self) -> str:
        """The question block handed to the prompts (the reference's format)."""
        return question_text(self.question, self.passage)


@dataclass
class Skipped:
    """A row that was not loaded, and why."""

    source: str
    row: int
    reason: str


@dataclass
class QuestionSet:
    """Loaded questions plus the rows that were skipped (empty unless ``on_bad='skip'``)."""

    questions: list[Question]
    skipped: list[Skipped] = field(default_factory=list)


def question_text(question: str, passage: str) -> str:
    """The reference's question block: ``Passage: ...\nQuestion: ...\nAnswer:``."""
    return f"Passage: {passage}\nQuestion: {question}\nAnswer:"


def question_id(question: str, passage: str) -> str:
    """Content-derived id: the same question and passage give the same id everywhere."""
    digest = hashlib.sha256(f"{question.strip()}\x1f{passage.strip()}".encode()).hexdigest()
    return digest[:16]


def partition_of(qid: str) -> Partition:
    """Deterministic router-train / router-eval split from the id (one third eval)."""
    return "eval" if int(qid[:8], 16) % EVAL_MODULUS == 0 else "train"


def normalise_label(value: Any) -> bool:
    """Map bool, 0/1 and "true"/"false" (any case) to bool; raise ValueError otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value == -1:
            raise ValueError("unlabeled (-1): BoolQ test rows carry no label; use a labelled split")
        if value in (0, 1):
            return bool(value)
        raise ValueError(f"label {value!r} is not 0 or 1")
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        if low == "-1":
            raise ValueError("unlabeled (-1): BoolQ test rows carry no label; use a labelled split")
    raise ValueError(f"label {value!r} is not a bool, 0/1 or 'true'/'false'")


def _row_to_question(raw: Any, source: str, row: int) -> Question:
    if not isinstance(raw, dict):
        raise ValueError(f"expected an object with question/passage/answer, got {type(raw).__name__}")
    question = raw.get("question")
    passage = raw.get("passage")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("missing or empty 'question'")
    if not isinstance(passage, str) or not passage.strip():
        raise ValueError("missing or empty 'passage'")
    if "answer" in raw:
        label = normalise_label(raw["answer"])
    elif "label" in raw:
        label = normalise_label(raw["label"])
    else:
        raise ValueError("no 'answer' or 'label' field")
    title = raw.get("title")
    if isinstance(title, str) and title.strip():
        # The reference's SuperGLUE copy hands the model "<title> -- <passage>".
        passage = f"{title.strip()} -- {passage.strip()}"
    question, passage = question.strip(), passage.strip()
    qid = question_id(question, passage)
    return Question(qid, question, passage, label, partition_of(qid), source, row)


def _iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        for row, line in enumerate(fh):
            if not line.strip():
                continue
            if row == 0:
                line = line.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark, as some editors write
            try:
                yield row, json.loads(line.decode("utf-8"))
            except UnicodeDecodeError as e:
                yield row, ValueError(f"not UTF-8 ({e.reason} at byte {e.start})")
            except json.JSONDecodeError as e:
                yield row, ValueError(f"invalid JSON ({e.msg}, column {e.colno})")


def _iter_parquet(path: Path) -> Iterator[tuple[int, Any]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(
            f"dataset {path} is not a readable Parquet file ({e}); give a .parquet, .jsonl or .jsonl.gz"
        ) from e
    yield from enumerate(table.to_pylist())


def _iter_hf(spec: str) -> Iterator[tuple[int, Any]]:
    name, _, split = spec.partition(":")
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - datasets is a declared dependency
        raise DataError("loading hf: sources needs the 'datasets' package") from e
    try:
        ds = datasets.load_dataset(name, split=split or "validation")
    except Exception as e:  # datasets raises many types; all mean "cannot load this id"
        raise DataError(
            f"cannot load Hugging Face dataset {name!r} (split {split or 'validation'!r}): {e}. "
            "Offline, use the bundled copy (source 'boolq') or a local jsonl/parquet file."
        ) from e
    yield from enumerate(ds)


def bundled_path() -> Path:
    """Path of the bundled BoolQ dev split."""
    return Path(str(resources.files("der.datasets.boolq").joinpath("dev.jsonl.gz")))


def _rows(source: str) -> Iterable[tuple[int, Any]]:
    if source == BUNDLED:
        return _iter_jsonl(bundled_path())
    if source.startswith("hf:"):
        return _iter_hf(source[3:])
    path = Path(source)
    if not path.exists():
        raise DataError(
            f"dataset {source!r} not found: give 'boolq' (bundled), a .jsonl/.jsonl.gz/.parquet "
            "path, or hf:<dataset id>[:split]"
        )
    if path.name.endswith((".jsonl", ".jsonl.gz", ".json")):
        return _iter_jsonl(path)
    if path.suffix == ".parquet":
        return _iter_parquet(path)
    raise DataError(f"dataset {source!r}: unsupported file type (use .jsonl, .jsonl.gz or .parquet)")


def load_questions(
    source: str = BUNDLED,
    *,
    limit: int | None = None,
    on_bad: Literal["error", "skip"] = "error",
) -> QuestionSet:
    """Load labelled questions from ``source`` in file order.

    :param source: ``boolq``, a local file, or ``hf:<id>[:split]`` (see module docstring).
    :param limit: keep at most this many good questions (the first ones in file order).
    :param on_bad: ``error`` raises DataError naming the first bad row; ``skip`` records each bad
        or duplicate row in ``QuestionSet.skipped`` and keeps the good ones.
    """
    out: list[Question] = []
    skipped: list[Skipped] = []
    seen: dict[str, tuple[int, bool]] = {}  # question_id -> (row, label) of its first row
    for row, raw in _rows(source):
        try:
            if isinstance(raw, Exception):
                raise raw
            q = _row_to_question(raw, source, row)
            if q.question_id in seen:
                first = seen[q.question_id]
                clash = "" if q.label == first[1] else f", with the opposite label ({q.label} vs {first[1]})"
                raise ValueError(f"duplicate of row {first[0]} (same question and passage{clash})")
        except ValueError as e:
            if on_bad == "error":
                raise DataError(
                    f"{source} row {row}: {e}. Fix or remove the row, or skip bad rows "
                    "(`--on-bad-rows skip`; in Python, on_bad='skip')."
                ) from e
            skipped.append(Skipped(source, row, str(e)))
            continue
        seen[q.question_id] = (row, q.label)
        out.append(q)
        if limit is not None and len(out) >= limit:
            break
    return QuestionSet(out, skipped)
