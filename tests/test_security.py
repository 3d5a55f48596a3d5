"""Secrets stay secret, reports escape what models and datasets wrote, experts are called only where
configured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from der.experts import make_expert
from der.report_html import render
from tests.loopback import LoopbackExpertServer

ROOT = Path(__file__).parents[1]
KEY = "sk-planted-4f9c2a7e1b"


def test_a_planted_api_key_appears_in_no_artefact(tmp_path):
    root, out = tmp_path / "wh", tmp_path / "report"
    with LoopbackExpertServer(["alpha:1b", "beta:3b"], schedule=["echo_auth"]) as srv:
        cfg = tmp_path / "experts.toml"
        cfg.write_text(
            f"[defaults]\nbackend = 'openai'\nbase_url = '{srv.base}'\napi_key_env = 'DER_PLANTED_KEY'\n"
            "[[experts]]\nname = 'alpha'\nmodel = 'alpha:1b'\n[[experts]]\nname = 'beta'\nmodel = 'beta:3b'\n"
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DER_PLANTED_KEY": KEY, "HF_HUB_OFFLINE": "1"}
        run = [sys.executable, "-m", "der.cli"]
        logs = []
        for args in (
            ["prefetch", "--experts", str(cfg), "--warehouse", str(root), "--limit", "12"],
            ["prefetch", "--experts", str(cfg), "--warehouse", str(root), "--limit", "12"],
            ["pipeline", "--warehouse", str(root), "--out", str(out), "--steps", "256", "--no-frontier"],
            ["sql", "--warehouse", str(root), "select * from calls", "--format", "json"],
        ):
            done = subprocess.run(run + args, env=env, capture_output=True, text=True, cwd=ROOT, timeout=600)
            logs.append(done.stdout + done.stderr)
            assert done.returncode in (0, 3), done.stderr[-2000:]
        assert all(r["headers"].get("Authorization") == f"Bearer {KEY}" for r in srv.requests)
    assert "invalid key Bearer ***" in logs[0]  # the reflected key was redacted from the recorded error
    leaks = [str(p) for p in [*root.rglob("*"), *out.rglob("*")] if p.is_file() and KEY.encode() in p.read_bytes()]
    assert leaks == []
    assert not any(KEY in text for text in logs)


def test_report_html_escapes_model_and_dataset_text():
    planted = "<script>alert('x')</script>"
    row = {"name": planted, "accuracy_mean": 1.0, "calls_mean": 1.0, "latency_mean": 1.0, "cost_mean": 1.0, "n": 1}
    report = {
        "timestamp": "now",
        "provenance": {"warehouse": planted, "cache_fingerprint": "f"},
        "end_results_eval": {"gold-stop": [row]},
        "protocols": {"gold-stop": planted},
        "oracle_note": "",
        "der_samples": {
            "gold-stop": [
                {
                    "q": planted,
                    "gold": "yes",
                    "final": planted,
                    "correct": True,
                    "calls": 1,
                    "total_latency": 1.0,
                    "trace": [
                        {
                            "t": 0,
                            "pick": planted,
                            "handed": "none",
                            "ans": planted,
                            "latency": 1.0,
                            "raw": planted,
                            "p_yes": None,
                        }
                    ],
                }
            ]
        },
    }
    html = render(report, {})
    assert "<script" not in html
    assert "&lt;script&gt;" in html


def test_proxy_settings_in_the_environment_do_not_redirect_expert_calls(make_specs, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    with LoopbackExpertServer(["alpha:1b"]) as srv:
        res = make_expert(make_specs(srv.base, models=["alpha:1b"])[0]).call("q")
        assert res.status == "ok" and srv.hits["alpha:1b"] == 1


def test_redirects_to_other_hosts_are_not_followed(make_specs):
    with (
        LoopbackExpertServer(["alpha:1b"]) as elsewhere,
        LoopbackExpertServer(["alpha:1b"], schedule=[f"redirect:{elsewhere.base}/api/chat"]) as srv,
    ):
        res = make_expert(make_specs(srv.base, models=["alpha:1b"])[0]).call("q")
        assert res.status == "failed" and "HTTP 302" in res.error
        assert sum(elsewhere.hits.values()) == 0
