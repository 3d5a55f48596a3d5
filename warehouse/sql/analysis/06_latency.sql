-- latency percentiles per expert and step kind (seconds, ok calls); load/prompt/generation split
-- where the server reported it. grain: (expert, step_kind)
create or replace view latency_percentiles as
select
    expert,
    step_kind,
    count(*) as n_calls,
    quantile_cont(latency_s, 0.5) as p50_s,
    quantile_cont(latency_s, 0.9) as p90_s,
    quantile_cont(latency_s, 0.99) as p99_s,
    avg(latency_s) as mean_s,
    avg(load_s) as mean_load_s,
    avg(prompt_eval_s) as mean_prompt_eval_s,
    avg(eval_s) as mean_eval_s,
    avg(prompt_tokens) as mean_prompt_tokens,
    avg(completion_tokens) as mean_completion_tokens
from calls
where status = 'ok'
group by all
order by expert, step_kind;
