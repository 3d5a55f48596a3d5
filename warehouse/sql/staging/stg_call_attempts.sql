-- every call attempt ever written, failures included (grain: one attempt)
create or replace view stg_call_attempts as
select * from {{ source('calls') }};
