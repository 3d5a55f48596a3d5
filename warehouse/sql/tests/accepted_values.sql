-- statuses, answers, step kinds and partitions take only their documented values;
-- a failed call never carries an answer, an ok call always does
select call_key, status, answer, step_kind
from calls
where status not in ('ok', 'failed')
   or (status = 'ok' and answer not in ('yes', 'no', 'unknown'))
   or (status = 'ok' and answer is null)
   or (status = 'failed' and answer is not null)
   or (status = 'failed' and error is null)
   or step_kind not in ('first', 'ktp')
   or prev_answer not in ('none', 'yes', 'no')
   or (step_kind = 'first') <> (prev_answer = 'none')
union all
select question_id, partition, null, null from questions where partition not in ('train', 'eval')
