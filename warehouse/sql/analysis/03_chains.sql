-- chains: every chain of experts up to tmax (der_settings.tmax), expanded from the deduplicated
-- calls. grain: (question_id, chain). chain is the experts in order joined by ' > '.
-- what passes on: a yes/no answer is handed to the next expert; an unknown answer passes
-- nothing, so the next expert gets its first-step prompt (prev_answer 'none').
-- a chain stops where a call is missing or failed: its steps so far are still listed.
create or replace view chains as
with recursive ok_calls as (
    select question_id, expert, prev_answer, answer, latency_s
    from calls
    where status = 'ok'
),

walk as (
    select
        question_id,
        expert as chain,
        expert as last_expert,
        1 as depth,
        answer as final_answer,
        latency_s as total_latency_s
    from ok_calls
    where prev_answer = 'none'

    union all

    select
        walk.question_id,
        walk.chain || ' > ' || nxt.expert,
        nxt.expert,
        walk.depth + 1,
        nxt.answer,
        walk.total_latency_s + nxt.latency_s
    from walk
    join ok_calls as nxt
        on nxt.question_id = walk.question_id
        and nxt.prev_answer = case when walk.final_answer in ('yes', 'no') then walk.final_answer else 'none' end
    where walk.depth < (select tmax from der_settings)
),

final as (
    select
        walk.question_id,
        walk.chain,
        walk.depth,
        walk.final_answer,
        walk.final_answer = case when questions.label then 'yes' else 'no' end as correct,
        walk.total_latency_s
    from walk
    join stg_questions as questions using (question_id)
)

select * from final;
