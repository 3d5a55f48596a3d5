-- per expert: distinct calls recorded, how many ok / failed, and over how many questions
create or replace view coverage as
select
    expert,
    count(*) as n_calls,
    sum((status = 'ok')::int) as n_ok,
    sum((status = 'failed')::int) as n_failed,
    count(distinct question_id) as n_questions
from calls
group by all
order by expert;
