"""A loopback HTTP server that speaks Ollama's and the OpenAI chat wire formats for real.

Answers are a deterministic function of (model, prompt), so two runs of the same chain get the
same text. Faults are injected per request from a schedule (a list consumed in order) or at a
random rate: HTTP 500/502/503, 404, HTTP-200 error bodies, empty content, done_reason 'load',
invalid JSON, connection reset mid-body, slow replies, prompts reported as truncated, and an outage
('refused': the server stops listening for a moment, so connections are refused, then comes back on
the same port). Every request is counted, so tests can assert exactly which calls reached the server.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = (
    "500",
    "502",
    "503",
    "404",
    "error200",
    "empty",
    "load",
    "badjson",
    "reset",
    "slow",
    "truncated",
    "refused",
)


def answer_for(model: str, prompt: str) -> str:
    """The deterministic reply: a model's 'opinion', swayed by a handed-on answer for some models."""
    h = int(hashlib.sha256(f"{model}\n{prompt}".encode()).hexdigest(), 16)
    handed = re.search(r"another model:\n(yes|no)\n", prompt)
    if handed and h % 3 == 0:
        return handed.group(1)
    return ["Yes", "No", "yes, because the passage says so", "No.", "I am not sure"][h % 5]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or drop the connection are part of the tests, not server bugs.
        pass


class LoopbackExpertServer:
    """Start with ``with LoopbackExpertServer(models=[...]) as srv: srv.base``."""

    def __init__(
        self,
        models: list[str],
        schedule: list[str] | None = None,
        fault_rate: float = 0.0,
        faults: tuple[str, ...] = FAULTS,
        delay_s: float | dict[str, float] = 0.0,
        seed: int = 0,
        logprobs: bool = True,
        outage_s: float = 0.2,
    ) -> None:
        self.models = list(models)
        self.schedule = list(schedule or [])
        self.fault_rate, self.faults = fault_rate, faults
        self.delay_s = delay_s
        self.logprobs = logprobs
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.hits: Counter[str] = Counter()
        self.prompts: list[tuple[str, str]] = []
        self.faults_injected: Counter[str] = Counter()
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.outage_s = outage_s
        self.up = threading.Event()
        self._outages: list[threading.Thread] = []
        self._httpd = _QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_port}"

    def __enter__(self) -> LoopbackExpertServer:
        self._thread.start()
        self.up.set()
        return self

    def __exit__(self, *exc: object) -> None:
        for t in list(self._outages):
            t.join()
        self._httpd.shutdown()
        self._httpd.server_close()

    def go_down(self) -> None:
        """Stop listening for ``outage_s`` (connections are refused), then listen again on the same port."""
        with self.lock:
            if not self.up.is_set():
                return
            self.up.clear()
        t = threading.Thread(target=self._outage, daemon=True)
        self._outages.append(t)
        t.start()

    def _outage(self) -> None:
        port = self._httpd.server_port
        self._httpd.shutdown()
        self._httpd.server_close()
        time.sleep(self.outage_s)
        self._httpd = _QuietServer(("127.0.0.1", port), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        self.up.set()

    def next_fault(self) -> str | None:
        with self.lock:
            if self.schedule:
                f = self.schedule.pop(0)
                fault = None if f in ("", "ok") else f
            elif self.fault_rate and self.rng.random() < self.fault_rate:
                fault = self.rng.choice(self.faults)
            else:
                fault = None
            if fault:
                self.faults_injected[fault] += 1
            return fault

    def delay(self, model: str) -> float:
        return self.delay_s.get(model, 0.0) if isinstance(self.delay_s, dict) else self.delay_s

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out as two writes; with Nagle on, the body waits for the client's
            # delayed ACK (tens of ms a call on loopback), which is the test server's cost, not der's
            disable_nagle_algorithm = True

            def log_message(self, *a: Any) -> None:
                pass

            def _drop(self) -> None:
                """Close the connection without a reply (what clients of a server going down see)."""
                self.close_connection = True
                self.connection.shutdown(2)

            def _send(self, code: int, body: Any, raw: bytes | None = None) -> None:
                data = raw if raw is not None else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if not srv.up.is_set():
                    return self._drop()
                if self.path == "/api/tags":
                    models = [
                        {"name": m, "model": m, "digest": hashlib.sha256(m.encode()).hexdigest(), "size": 1}
                        for m in srv.models
                    ]
                    return self._send(200, {"models": models})
                if self.path == "/v1/models":
                    return self._send(
                        200, {"object": "list", "data": [{"id": m, "object": "model"} for m in srv.models]}
                    )
                self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                if not srv.up.is_set():  # kept-alive connections of a server that went down
                    return self._drop()
                n = int(self.headers.get("Content-Length") or 0)
                req = json.loads(self.rfile.read(n) or b"{}")
                model = req.get("model", "")
                prompt = req["messages"][-1]["content"]
                with srv.lock:
                    srv.in_flight += 1
                    srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
                try:
                    self._chat(req, model, prompt)
                finally:
                    with srv.lock:
                        srv.in_flight -= 1

            def _chat(self, req: dict[str, Any], model: str, prompt: str) -> None:
                with srv.lock:
                    srv.hits[model] += 1
                    srv.prompts.append((model, prompt))
                    srv.requests.append({"path": self.path, "body": req, "headers": dict(self.headers)})
                if model not in srv.models:
                    msg = f"model '{model}' not found, try pulling it first"
                    return self._send(404, {"error": msg} if self.path == "/api/chat" else {"error": {"message": msg}})
                fault = srv.next_fault()
                time.sleep(srv.delay(model))
                if fault in ("500", "502", "503"):
                    return self._send(int(fault), {"error": f"injected {fault}"})
                if fault == "404":
                    return self._send(404, {"error": f"model '{model}' not found"})
                if fault == "badjson":
                    return self._send(200, None, raw=b'{"model": "x", "message": {"content": "ye')
                if fault == "refused":
                    srv.go_down()
                    return self._drop()
                if fault == "reset":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "500")
                    self.end_headers()
                    self.wfile.write(b'{"model": "')
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    self.close_connection = True
                    return
                if fault == "slow":
                    time.sleep(1.5)
                if fault == "echo_auth":  # a hostile server that reflects the credentials it got
                    return self._send(401, {"error": f"invalid key {self.headers.get('Authorization')}"})
                if fault and fault.startswith("redirect:"):
                    self.send_response(302)
                    self.send_header("Location", fault.split(":", 1)[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fault == "error200":
                    return self._send(200, {"error": "injected: model runner crashed"})
                text = "" if fault == "empty" else answer_for(model, prompt)
                prompt_n = 5 if fault == "truncated" else max(1, len(prompt) // 4)
                if self.path == "/api/chat":
                    return self._send(200, self._ollama(model, text, prompt_n, fault, req))
                if self.path == "/v1/chat/completions":
                    return self._send(200, self._openai(model, text, prompt_n, req))
                self._send(404, {"error": "not found"})

            def _tops(self, text: str) -> list[dict[str, Any]]:
                first = text.split()[0].strip(".,") if text.split() else ""
                p = 0.8 if first.lower() == "yes" else 0.2
                return [
                    {
                        "token": first or "I",
                        "logprob": -0.1,
                        "top_logprobs": [
                            {"token": "Yes", "logprob": float(_log(p * 0.7))},
                            {"token": " yes", "logprob": float(_log(p * 0.3))},
                            {"token": "No", "logprob": float(_log((1 - p) * 0.9))},
                            {"token": "Maybe", "logprob": -5.0},
                        ],
                    }
                ]

            def _ollama(self, model: str, text: str, prompt_n: int, fault: str | None, req: dict) -> dict:
                body: dict[str, Any] = {
                    "model": model,
                    "created_at": "2026-01-01T00:00:00Z",
                    "message": {"role": "assistant", "content": text},
                    "done": True,
                    "done_reason": "load" if fault == "load" else "stop",
                    "total_duration": 120_000_000,
                    "load_duration": 10_000_000,
                    "prompt_eval_count": prompt_n,
                    "prompt_eval_duration": 80_000_000,
                    "eval_count": 2,
                    "eval_duration": 30_000_000,
                }
                if srv.logprobs and req.get("logprobs") and text:
                    body["logprobs"] = self._tops(text)
                return body

            def _openai(self, model: str, text: str, prompt_n: int, req: dict) -> dict:
                choice: dict[str, Any] = {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text},
                }
                if srv.logprobs and req.get("logprobs") and text:
                    choice["logprobs"] = {"content": self._tops(text)}
                return {
                    "id": "chatcmpl-loopback",
                    "object": "chat.completion",
                    "model": model,
                    "choices": [choice],
                    "usage": {"prompt_tokens": prompt_n, "completion_tokens": 2, "total_tokens": prompt_n + 2},
                    "timings": {"prompt_n": prompt_n, "prompt_ms": 80.0, "predicted_n": 2, "predicted_ms": 30.0},
                }

        return Handler


def _log(p: float) -> float:
    import math

    return math.log(max(p, 1e-9))
