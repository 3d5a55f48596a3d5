-- calls has one row per call key
select call_key, count(*) from calls group by call_key having count(*) > 1
