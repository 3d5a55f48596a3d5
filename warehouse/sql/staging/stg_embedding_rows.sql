-- every embedding row ever written (grain: one row; two writers may repeat a state)
create or replace view stg_embedding_rows as
select * from {{ source('embeddings') }};
