-- chains: every chain of experts up to tmax, expanded from the deduplicated calls.
-- grain: (question_id, chain). chain is the experts in order joined by ' > '.
-- what passes on: a yes/no answer is handed to the next expert; an unknown answer passes
-- nothing, so the next expert gets its first-step prompt (prev_answer 'none').
-- a chain stops where a call is missing or failed: its steps so far are still listed.
-- one join per depth, unrolled to tmax, rather than a recursive cte: duckdb pushes a filter
-- such as `where question_id = ...` through joins and unions but not into a recursive cte, so a
-- question's chains come back in a fraction of a second at any warehouse size.
create or replace view chains as
with ok_calls as (
    select
        question_id,
        expert,
        prev_answer,
        answer,
        latency_s,
        case when answer in ('yes', 'no') then answer else 'none' end as hands_on
    from calls
    where status = 'ok'
),

depth_1 as (
    select
        question_id,
        expert as chain,
        1 as depth,
        answer as final_answer,
        hands_on,
        latency_s as total_latency_s
    from ok_calls
    where prev_answer = 'none'
),
{% for d in range(2, tmax + 1) %}
depth_{{ d }} as (
    select
        walk.question_id,
        walk.chain || ' > ' || nxt.expert as chain,
        {{ d }} as depth,
        nxt.answer as final_answer,
        nxt.hands_on,
        walk.total_latency_s + nxt.latency_s as total_latency_s
    from depth_{{ d - 1 }} as walk
    join ok_calls as nxt
        on nxt.question_id = walk.question_id
        and nxt.prev_answer = walk.hands_on
),
{% endfor %}
walk as (
    {%- for d in range(1, tmax + 1) %}
    select * from depth_{{ d }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
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
