select question_id, count(*) from questions group by question_id having count(*) > 1
