-- the best any router could do: share of questions with at least one correct chain of depth <= d.
-- grain: depth (1..tmax)
create or replace view oracle_bounds as
with per_depth as (
    select question_id, depth, max(correct::int) as any_correct
    from chains
    group by all
),

cumulative as (
    select
        question_id,
        depth,
        max(any_correct) over (partition by question_id order by depth) as solved
    from per_depth
)

select depth, count(*) as n_questions, avg(solved) as oracle_accuracy
from cumulative
group by depth
order by depth;
