import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from der.data import load_questions, normalise_label, partition_of, question_id
from der.errors import DataError


def test_bundled_dev_split_is_complete_and_partitioned():
    qs = load_questions().questions
    assert len(qs) == 3270
    assert sum(q.label for q in qs) == 2033
    assert len({q.question_id for q in qs}) == 3270
    share_eval = sum(q.partition == "eval" for q in qs) / len(qs)
    assert 0.30 < share_eval < 0.37
    assert qs[0].passage.startswith("Ethanol fuel -- ")
    assert qs[0].text.startswith("Passage: Ethanol fuel -- ") and qs[0].text.endswith("\nAnswer:")


def test_ids_and_partitions_depend_on_content_only():
    a = question_id("is it?", "a passage")
    assert a == question_id(" is it? ", "a passage\n")
    assert a != question_id("is it?", "another passage")
    assert partition_of(a) == partition_of(question_id("is it?", "a passage"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), (1, True), (0, False), ("true", True), ("False", False), ("TRUE", True)],
)
def test_labels_normalise(value, expected):
    assert normalise_label(value) is expected


@pytest.mark.parametrize("value", [-1, "-1", 2, "maybe", None, 0.5])
def test_bad_labels_raise(value):
    with pytest.raises(ValueError):
        normalise_label(value)


def _write_jsonl(path, rows):
    with open(path, "w") as fh:
        for r in rows:
            fh.write(r if isinstance(r, str) else json.dumps(r))
            fh.write("\n")


def test_unlabeled_row_is_rejected_naming_the_row(tmp_path):
    p = tmp_path / "d.jsonl"
    _write_jsonl(
        p, [{"question": "q1", "passage": "p1", "answer": True}, {"question": "q2", "passage": "p2", "label": -1}]
    )
    with pytest.raises(DataError, match=r"row 1: unlabeled"):
        load_questions(str(p))


def test_malformed_rows_are_skipped_visibly_when_asked(tmp_path):
    p = tmp_path / "d.jsonl"
    _write_jsonl(
        p,
        [
            {"question": "q1", "passage": "p1", "answer": "true"},
            "{not json",
            {"question": "q2", "passage": "", "answer": 0},
            {"question": "q1", "passage": "p1", "answer": True},
            {"question": "q3", "passage": "p3", "label": 0},
        ],
    )
    got = load_questions(str(p), on_bad="skip")
    assert [q.question for q in got.questions] == ["q1", "q3"]
    assert [s.row for s in got.skipped] == [1, 2, 3]
    assert "invalid JSON" in got.skipped[0].reason
    assert "empty 'passage'" in got.skipped[1].reason
    assert "duplicate of row 0" in got.skipped[2].reason


def test_non_utf8_row_is_named(tmp_path):
    p = tmp_path / "d.jsonl.gz"
    with gzip.open(p, "wb") as fh:
        fh.write(json.dumps({"question": "q", "passage": "p", "answer": True}).encode() + b"\n")
        fh.write(b'{"question": "\xff\xfe", "passage": "p", "answer": true}\n')
    with pytest.raises(DataError, match=r"row 1: not UTF-8"):
        load_questions(str(p))


def test_parquet_and_limit(tmp_path):
    p = tmp_path / "d.parquet"
    pq.write_table(pa.table({"question": ["a", "b", "c"], "passage": ["x", "y", "z"], "label": [1, 0, 1]}), p)
    got = load_questions(str(p), limit=2).questions
    assert [(q.question, q.label) for q in got] == [("a", True), ("b", False)]


def test_missing_file_says_what_to_give():
    with pytest.raises(DataError, match="not found"):
        load_questions("/nonexistent/file.jsonl")


def test_hf_source_fails_clearly_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match=r"cannot load Hugging Face dataset 'no-such/dataset'.*bundled copy"):
        load_questions("hf:no-such/dataset:validation")


def test_byte_order_mark_and_conflicting_duplicates(tmp_path):
    row = {"question": "is it", "passage": "a passage", "answer": True}
    p = tmp_path / "bom.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps(row).encode() + b"\n" + json.dumps({**row, "answer": False}).encode())
    got = load_questions(str(p), on_bad="skip")
    assert len(got.questions) == 1 and got.questions[0].label is True
    assert "opposite label" in got.skipped[0].reason
    with pytest.raises(DataError, match="--on-bad-rows skip"):
        load_questions(str(p))
