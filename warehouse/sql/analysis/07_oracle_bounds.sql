-- the best any router could do: share of questions with at least one correct chain of depth <= d.
-- computed over states (question, answer handed on) rather than by listing chains, so it stays
-- cheap at any number of experts: a chain of depth d reaches state s if some expert, asked in a
-- state reached at depth d - 1, hands s on. grain: depth (1..tmax)
create or replace view oracle_bounds as
with recursive ok_calls as (
    select question_id, prev_answer, answer, is_correct
    from calls
    where status = 'ok'
),

reach as (
    select question_id, 'none' as state, 1 as depth
    from stg_questions

    union

    select reach.question_id, case when c.answer in ('yes', 'no') then c.answer else 'none' end, reach.depth + 1
    from reach
    join ok_calls as c on c.question_id = reach.question_id and c.prev_answer = reach.state
    where reach.depth < (select tmax from der_settings)
),

solved_at as (
    select reach.question_id, min(reach.depth) as depth
    from reach
    join ok_calls as c on c.question_id = reach.question_id and c.prev_answer = reach.state
    where c.is_correct
    group by 1
),

depths as (
    select unnest(range(1, (select tmax from der_settings) + 1)) as depth
),

recorded as (
    select distinct question_id from ok_calls
)

select
    depths.depth,
    count(*) as n_questions,
    avg((solved_at.depth is not null and solved_at.depth <= depths.depth)::int) as oracle_accuracy
from recorded
cross join depths
left join solved_at using (question_id)
group by depths.depth
order by depths.depth;
