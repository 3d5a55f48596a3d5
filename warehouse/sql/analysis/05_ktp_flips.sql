-- how often KTP changes the answer it was handed, and whether for the better.
-- grain: (expert, prev_answer) over ok KTP calls.
create or replace view ktp_flips as
with ktp as (
    select
        calls.expert,
        calls.prev_answer,
        calls.answer,
        calls.is_correct,
        calls.prev_answer = case when q.label then 'yes' else 'no' end as prev_correct
    from calls
    join stg_questions as q using (question_id)
    where calls.status = 'ok' and calls.step_kind = 'ktp'
)

select
    expert,
    prev_answer,
    count(*) as n_calls,
    avg((answer = prev_answer)::int) as kept_rate,
    avg((answer <> prev_answer)::int) as flip_rate,
    sum((answer <> prev_answer and is_correct)::int) as flips_to_correct,
    sum((answer <> prev_answer and prev_correct and not is_correct)::int) as flips_to_wrong,
    sum((answer = 'unknown')::int) as to_unknown
from ktp
group by all
order by expert, prev_answer;
