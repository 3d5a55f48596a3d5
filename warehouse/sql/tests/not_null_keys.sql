select 'calls' as tbl, call_key from calls where call_key is null or question_id is null or expert is null
union all
select 'questions', question_id from questions where question_id is null or label is null
