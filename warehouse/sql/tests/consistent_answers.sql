-- every ok attempt of one call key gave the same answer: a key is the full prompt and settings,
-- so two answers mean a non-deterministic server or a poisoned shard
select call_key, count(distinct answer) as answers
from stg_call_attempts
where status = 'ok'
group by call_key
having count(distinct answer) > 1
