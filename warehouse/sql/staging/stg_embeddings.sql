-- one MiniLM vector per (question, previous answer passed on, embedding model)
create or replace view stg_embeddings as
select *
from stg_embedding_rows
qualify row_number() over (partition by question_id, prev_answer, model order by question_id) = 1;
