"""Both backends against a loopback server speaking the real wire formats."""

import pytest

from der.config import parse_experts
from der.errors import ConfigError, ExpertUnavailable
from der.experts import make_expert
from tests.loopback import LoopbackExpertServer, answer_for


@pytest.mark.parametrize("backend", ["ollama", "openai"])
def test_ok_call_carries_text_timings_and_confidence(server, make_specs, backend):
    spec = make_specs(server.base, backend)[0]
    expert = make_expert(spec)
    expert.preflight()
    res = expert.call("Passage: p\nQuestion: q?\nAnswer:")
    assert res.status == "ok" and res.error is None
    assert res.raw_text == answer_for(spec.model, "Passage: p\nQuestion: q?\nAnswer:")
    assert res.latency_s > 0 and res.attempts == 1
    assert res.prompt_tokens == len("Passage: p\nQuestion: q?\nAnswer:") // 4
    assert res.completion_tokens == 2
    assert res.prompt_eval_s == pytest.approx(0.08) and res.eval_s == pytest.approx(0.03)
    if backend == "ollama":
        assert res.load_s == pytest.approx(0.01) and res.server_total_s == pytest.approx(0.12)
    if res.raw_text.lower().startswith(("yes", "no")):
        assert res.p_yes is not None and 0 < res.p_yes < 1


def test_ollama_request_puts_options_inside_options_and_turns_thinking_off(server, make_specs):
    expert = make_expert(make_specs(server.base)[0])
    expert.call("hello")
    body = server.requests[-1]["body"]
    assert body["stream"] is False and body["think"] is False
    assert body["options"] == {"temperature": 0.0, "seed": 7, "num_ctx": 2048, "num_predict": 24}
    assert "temperature" not in body


def test_openai_api_key_comes_from_the_environment(server, make_specs, monkeypatch):
    monkeypatch.setenv("DER_TEST_KEY", "sk-planted-secret")
    spec = make_specs(server.base, "openai", api_key_env="DER_TEST_KEY")[0]
    make_expert(spec).call("hello")
    assert server.requests[-1]["headers"]["Authorization"] == "Bearer sk-planted-secret"
    assert "sk-planted" not in repr(spec)


def test_missing_api_key_variable_is_a_config_error(server, make_specs, monkeypatch):
    monkeypatch.delenv("DER_MISSING_KEY", raising=False)
    spec = make_specs(server.base, "openai", api_key_env="DER_MISSING_KEY")[0]
    with pytest.raises(ConfigError, match="DER_MISSING_KEY"):
        make_expert(spec).preflight()


def test_preflight_names_missing_model_and_the_pull_command(server, make_specs):
    spec = make_specs(server.base, models=["absent:13b"])[0]
    with pytest.raises(ExpertUnavailable, match=r"ollama pull absent:13b"):
        make_expert(spec).preflight()


def test_preflight_openai_lists_what_the_server_serves(server, make_specs):
    spec = make_specs(server.base, "openai", models=["absent"])[0]
    with pytest.raises(ExpertUnavailable, match=r"alpha:1b"):
        make_expert(spec).preflight()


def test_preflight_on_a_closed_port_fails_fast(make_specs):
    spec = make_specs("http://127.0.0.1:9")[0]
    with pytest.raises(ExpertUnavailable, match="cannot reach Ollama"):
        make_expert(spec).preflight()


def test_preflight_records_the_ollama_digest(server, make_specs):
    spec = make_specs(server.base)[0]
    fp_before = spec.fingerprint()
    make_expert(spec).preflight()
    assert spec.digest and spec.fingerprint() != fp_before


@pytest.mark.parametrize(
    ("backend", "fault", "error"),
    [
        (backend, fault, error)
        for backend in ("ollama", "openai")
        for fault, error in [
            ("404", "HTTP 404"),
            ("error200", "model runner crashed"),
            ("empty", "empty content"),
            ("truncated", "prompt truncated"),
        ]
        # Ollama leaves cached tokens out of prompt_eval_count, so only its num_ctx check applies
        # (test_ollama_prompt_at_the_context_limit_is_flagged)
        if (backend, fault) != ("ollama", "truncated")
    ],
)
def test_bad_replies_are_failures_never_answers(make_specs, backend, fault, error):
    with LoopbackExpertServer(["alpha:1b"], schedule=[fault]) as srv:
        res = make_expert(make_specs(srv.base, backend, models=["alpha:1b"])[0]).call("x" * 400)
    assert res.status == "failed" and res.raw_text is None
    assert error in res.error
    assert res.attempts == 1


def test_done_reason_load_is_a_failure(make_specs):
    with LoopbackExpertServer(["alpha:1b"], schedule=["load"]) as srv:
        res = make_expert(make_specs(srv.base, models=["alpha:1b"])[0]).call("q")
    assert res.status == "failed" and "generated nothing" in res.error


def test_ollama_prompt_at_the_context_limit_is_flagged(make_specs):
    spec = make_specs("http://127.0.0.1:9")[0]
    assert make_expert(spec).truncation("x", 2048 - 24) is not None
    assert make_expert(spec).truncation("x", 300) is None


@pytest.mark.parametrize("backend", ["ollama", "openai"])
def test_transient_failures_are_retried_then_answered(make_specs, backend):
    with LoopbackExpertServer(["alpha:1b"], schedule=["503", "reset", "badjson"]) as srv:
        res = make_expert(make_specs(srv.base, backend, models=["alpha:1b"])[0]).call("q")
        assert srv.hits["alpha:1b"] == 4
    assert res.status == "ok" and res.attempts == 4


def test_retries_exhausted_is_a_failure_with_the_last_error(make_specs):
    with LoopbackExpertServer(["alpha:1b"], schedule=["500"] * 4) as srv:
        res = make_expert(make_specs(srv.base, models=["alpha:1b"])[0]).call("q")
    assert res.status == "failed" and res.attempts == 4 and "HTTP 500" in res.error


def test_read_timeout_is_retried_and_reported(make_specs):
    with LoopbackExpertServer(["alpha:1b"], delay_s=0.5) as srv:
        spec = make_specs(srv.base, models=["alpha:1b"])[0]
        spec.read_timeout_s, spec.retries = 0.1, 1
        res = make_expert(spec).call("q")
    assert res.status == "failed" and "timeout" in res.error and res.attempts == 2


def test_calls_spread_over_hosts_with_bounded_concurrency(make_specs):
    from concurrent.futures import ThreadPoolExecutor

    with LoopbackExpertServer(["alpha:1b"], delay_s=0.05) as a, LoopbackExpertServer(["alpha:1b"], delay_s=0.05) as b:
        spec = make_specs([a.base, b.base], models=["alpha:1b"])[0]
        expert = make_expert(spec)
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(expert.call, [f"q{i}" for i in range(12)]))
        assert a.hits["alpha:1b"] + b.hits["alpha:1b"] == 12
        assert a.hits["alpha:1b"] >= 3 and b.hits["alpha:1b"] >= 3
        assert a.max_in_flight == 1 and b.max_in_flight == 1  # concurrency 1 per host, six callers


def test_config_errors_say_what_to_change():
    base = {"name": "a", "model": "m"}
    with pytest.raises(ConfigError, match="unknown backend 'vllm'"):
        parse_experts({"experts": [{**base, "backend": "vllm"}]})
    with pytest.raises(ConfigError, match="not an http"):
        parse_experts({"experts": [{**base, "base_url": "localhost:11434"}]})
    with pytest.raises(ConfigError, match="unknown keys"):
        parse_experts({"experts": [{**base, "temprature": 0}]})
    with pytest.raises(ConfigError, match="unique"):
        parse_experts({"experts": [base, base]})
    with pytest.raises(ConfigError, match="no \\[\\[experts\\]\\]"):
        parse_experts({})


def test_bundled_configs_load():
    from der.config import load_experts

    assert [s.model for s in load_experts()] == [
        "llama3.2:3b-instruct-q4_K_M",
        "qwen2.5:3b-instruct-q4_0",
        "mistral:instruct",
    ]
    local = load_experts("llama-local")
    assert all(s.backend == "openai" and s.extra_body == {"cache_prompt": False} for s in local)
