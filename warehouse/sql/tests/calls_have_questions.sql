-- every call's question exists (relationship test)
select c.call_key, c.question_id from calls c anti join questions q using (question_id)
