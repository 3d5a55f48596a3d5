-- calls: one row per distinct call (question, expert, answer passed on), latest state.
-- prev_answer is 'none' for a first step. answer is yes / no / unknown for ok calls and null for
-- failed ones: a failure is never an answer. latency_s is the client's wall time of the call.
create or replace view calls as
with calls as (
    select * from stg_calls
),

questions as (
    select question_id, label from stg_questions
),

final as (
    select
        calls.question_id,
        calls.expert,
        calls.prev_answer,
        calls.step_kind,
        calls.raw_text,
        calls.answer,
        calls.status,
        calls.error,
        calls.latency_s,
        calls.p_yes,
        calls.prompt_chars,
        calls.prompt_tokens,
        calls.completion_tokens,
        calls.load_s,
        calls.prompt_eval_s,
        calls.eval_s,
        calls.server_total_s,
        calls.done_reason,
        calls.attempts,
        calls.host,
        calls.model,
        calls.digest,
        calls.template,
        calls.expert_fp,
        calls.call_key,
        calls.recorded_at,
        calls.run_id,
        calls.answer = case when questions.label then 'yes' else 'no' end as is_correct
    from calls
    left join questions using (question_id)
)

select * from final;
