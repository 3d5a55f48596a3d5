-- accuracy of each expert by step kind and the answer it was handed. grain: (expert, step_kind, prev_answer)
create or replace view expert_accuracy as
select
    expert,
    step_kind,
    prev_answer,
    count(*) as n_calls,
    avg(is_correct::int) as accuracy,
    avg((answer = 'unknown')::int) as unknown_rate,
    avg((answer = 'yes')::int) as yes_rate,
    avg(p_yes) as mean_p_yes
from calls
where status = 'ok'
group by all
order by expert, step_kind, prev_answer;
