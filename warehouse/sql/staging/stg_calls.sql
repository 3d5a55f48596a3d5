-- one row per call key: the first ok attempt if any, else the latest failure.
-- a key has several rows when a failed call was asked again, or two writers raced; answers for
-- the same key are the same call, so which ok row wins does not change any result.
create or replace view stg_calls as
with attempts as (
    select * from stg_call_attempts
),

final as (
    select *
    from attempts
    qualify row_number() over (
        partition by call_key
        order by
            status = 'ok' desc,
            case when status = 'ok' then recorded_at end asc,
            recorded_at desc,
            run_id
    ) = 1
)

select * from final;
