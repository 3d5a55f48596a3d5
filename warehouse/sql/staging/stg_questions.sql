-- one row per question the warehouse knows; shards may repeat a question (two writers): keep one
create or replace view stg_questions as
with source as (
    select * from {{ source('questions') }}
),

final as (
    select
        question_id,
        partition,
        question,
        passage,
        label,
        source,
        source_row
    from source
    qualify row_number() over (partition by question_id order by source, source_row) = 1
)

select * from final;
