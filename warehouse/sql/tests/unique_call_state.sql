-- one answer per (question, expert, answer handed on): one expert name means one model
select question_id, expert, prev_answer, count(*) from calls group by all having count(*) > 1
