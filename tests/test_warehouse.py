"""The SQL views: columns people rely on, data tests that can fail, read-only access."""

import pytest

from der.errors import WarehouseError
from der.prefetch import prefetch
from der.prompts import get_template
from der.store import compact, list_shards, write_shard
from der.warehouse import Warehouse

REQUIRED = {
    "questions": {"question_id", "partition", "question", "passage", "label"},
    "calls": {
        "question_id",
        "expert",
        "prev_answer",
        "step_kind",
        "raw_text",
        "answer",
        "status",
        "error",
        "latency_s",
    },
    "chains": {"question_id", "chain", "depth", "final_answer", "correct", "total_latency_s"},
    "expert_accuracy": {"expert", "step_kind", "prev_answer", "accuracy"},
    "ktp_flips": {"expert", "prev_answer", "flip_rate", "flips_to_correct", "flips_to_wrong"},
    "latency_percentiles": {"expert", "p50_s", "p90_s"},
    "oracle_bounds": {"depth", "oracle_accuracy"},
}


@pytest.fixture
def recorded(tmp_path, server, make_specs, questions):
    prefetch(questions[:6], make_specs(server.base), tmp_path, get_template("ref-v1"), tmax=3)
    return tmp_path


def test_views_expose_the_documented_columns(recorded):
    with Warehouse(recorded) as wh:
        for view, cols in REQUIRED.items():
            assert cols <= set(wh.sql(f"select * from {view} limit 0").columns), view


def test_data_tests_pass_on_a_clean_recording_and_catch_a_poisoned_one(recorded):
    with Warehouse(recorded) as wh:
        assert set(wh.data_tests().values()) == {0}
        row = wh.sql("select * from stg_call_attempts where status = 'ok' limit 1").to_arrow_table().to_pylist()[0]
    flipped = "no" if row["answer"] == "yes" else "yes"
    write_shard(recorded, "calls", [{**row, "call_key": "poison", "status": "failed", "error": None}])
    write_shard(recorded, "calls", [{**row, "call_key": "orphan", "question_id": "nope"}])
    write_shard(recorded, "calls", [{**row, "answer": flipped}])
    with Warehouse(recorded) as wh:
        failed = {k for k, v in wh.data_tests().items() if v}
    assert failed == {"accepted_values", "calls_have_questions", "unique_call_state", "consistent_answers"}


def test_chains_expand_every_sequence_up_to_tmax(recorded):
    with Warehouse(recorded, tmax=2) as wh:
        assert wh.query_rows("select depth, count(*) from chains group by 1 order by 1") == [(1, 18), (2, 54)]


def test_oracle_bounds_agree_with_the_listed_chains(recorded):
    with Warehouse(recorded, tmax=3) as wh:
        bounds = wh.query_rows("select depth, oracle_accuracy from oracle_bounds order by depth")
        from_chains = wh.query_rows(
            "select d.depth, avg(coalesce((select max(c.correct::int) from chains c "
            "where c.question_id = q.question_id and c.depth <= d.depth), 0)) "
            "from (select distinct question_id from calls) q "
            "cross join (select unnest([1, 2, 3]) as depth) d group by 1 order by 1"
        )
    assert [(d, round(a, 9)) for d, a in bounds] == [(d, round(a, 9)) for d, a in from_chains]


def test_read_statements_are_allowed(recorded):
    with Warehouse(recorded) as wh:
        assert "calls" in {r[0] for r in wh.user_query("show tables").fetchall()}
        assert wh.user_query("describe calls").fetchall()
        assert wh.user_query("summarize select latency_s from calls").fetchall()


@pytest.mark.parametrize(
    "query",
    [
        "copy (select 1) to 'x.csv'",
        "create table t as select 1",
        "attach 'x.db'",
        "install httpfs",
        "select * from read_csv('/etc/passwd')",
        "select 1; select 2",
        "set enable_external_access = true",
    ],
)
def test_user_queries_cannot_write_attach_or_read_other_files(recorded, query):
    with Warehouse(recorded) as wh, pytest.raises(WarehouseError):
        wh.user_query(query).fetchall()


def test_compaction_keeps_every_row(recorded):
    with Warehouse(recorded) as wh:
        before = wh.query_rows("select * exclude (recorded_at) from stg_calls order by call_key")
    shards, rows = compact(recorded, "calls")
    assert shards > 1 and len(list_shards(recorded, "calls")) == 1
    with Warehouse(recorded) as wh:
        assert wh.query_rows("select * exclude (recorded_at) from stg_calls order by call_key") == before
        assert wh.query_rows("select count(*) from stg_call_attempts") == [(rows,)]


def test_an_empty_warehouse_has_empty_views(tmp_path):
    with Warehouse(tmp_path) as wh:
        assert wh.query_rows("select count(*) from chains") == [(0,)]
        assert set(wh.data_tests().values()) == {0}


def test_the_example_queries_in_the_warehouse_readme_run(recorded):
    import re
    from pathlib import Path

    text = (Path(__file__).parents[1] / "warehouse" / "README.md").read_text()
    blocks = re.findall(r"```sql\n(.*?)```", text, flags=re.S)
    queries = [q.strip() for b in blocks for q in b.split(";") if q.strip()]
    assert len(queries) >= 4
    with Warehouse(recorded) as wh:
        for q in queries:
            wh.user_query(q).fetchall()


def test_an_fsspec_url_works_like_a_folder(server, make_specs, questions):
    """Object storage goes through fsspec for writing and DuckDB (with the same file system
    registered) for reading; memory:// stands in for s3:// here."""
    import fsspec

    from der.replay import load_replay

    root = "memory://der-test/warehouse"
    try:
        stats = prefetch(questions[:3], make_specs(server.base), root, get_template("ref-v1"), tmax=2)
        with Warehouse(root) as wh:
            assert wh.query_rows("select count(*) from calls") == [(stats.ok,)]
            assert set(wh.data_tests().values()) == {0}
        assert fsspec.filesystem("memory").exists("/der-test/warehouse/runs")
        compact(root, "calls")
        assert len(list_shards(root, "calls")) == 1
        data = load_replay(root, tmax=2, with_obs=False)
        assert len(data.question_ids) == 3
        again = prefetch(questions[:3], make_specs(server.base), root, get_template("ref-v1"), tmax=2)
        assert again.asked == 0
    finally:
        fsspec.filesystem("memory").rm("/der-test", recursive=True)
