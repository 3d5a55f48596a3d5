-- questions(question_id, partition, question, passage, label): grain one question
create or replace view questions as
select question_id, partition, question, passage, label, source, source_row
from stg_questions;
