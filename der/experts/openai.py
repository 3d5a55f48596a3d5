"""OpenAI-compatible chat completions (llama.cpp's llama-server, vLLM, LM Studio, Ollama's /v1)."""

from __future__ import annotations

import os
from typing import Any

import httpx

from der.errors import ConfigError, ExpertUnavailable
from der.experts.base import p_yes_from_top
from der.experts.http import HttpExpert, get_json

MS = 1e-3


class OpenAIExpert(HttpExpert):
    """A model behind ``/v1/chat/completions``; preflight checks ``/v1/models``.

    The API key, if any, is read from the environment variable named by ``api_key_env`` at call
    time and sent only as a bearer header: it is never stored in a spec, a row or a report.
    """

    path = "/v1/chat/completions"

    def headers(self) -> dict[str, str] | None:
        env = self.spec.api_key_env
        if not env:
            return None
        key = os.environ.get(env)
        if not key:
            raise ConfigError(f"expert {self.spec.name!r}: environment variable {env} (its API key) is not set")
        return {"Authorization": f"Bearer {key}"}

    def payload(self, prompt: str) -> dict[str, Any]:
        o = self.spec.options
        body: dict[str, Any] = {
            "model": self.spec.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": o.temperature,
            "seed": o.seed,
            "max_tokens": o.num_predict,
            "stream": False,
        }
        if o.top_logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = o.top_logprobs
        return body | self.spec.extra_body

    def parse(self, body: dict[str, Any]) -> dict[str, Any]:
        choice = body["choices"][0]
        text = (choice.get("message") or {}).get("content") or ""
        usage = body.get("usage") or {}
        timings = body.get("timings") or {}
        out: dict[str, Any] = {
            "raw_text": text,
            "done_reason": choice.get("finish_reason"),
            "prompt_tokens": usage.get("prompt_tokens", timings.get("prompt_n")),
            "completion_tokens": usage.get("completion_tokens", timings.get("predicted_n")),
            "prompt_eval_s": _seconds(timings.get("prompt_ms")),
            "eval_s": _seconds(timings.get("predicted_ms")),
        }
        content = (choice.get("logprobs") or {}).get("content")
        if isinstance(content, list):
            out["p_yes"] = p_yes_from_top(
                [(t["token"], [(a["token"], a["logprob"]) for a in t.get("top_logprobs") or []]) for t in content]
            )
        if not text.strip():
            out["error"] = f"empty content (finish_reason {choice.get('finish_reason')!r})"
        return out

    def preflight(self) -> None:
        headers = self.headers()
        for host in self.spec.base_urls:
            host = host.rstrip("/")
            try:
                models = get_json(self.client, host + "/v1/models", headers)
            except httpx.HTTPStatusError as e:
                raise ExpertUnavailable(
                    f"expert {self.spec.name!r}: {host}/v1/models answered HTTP {e.response.status_code}; "
                    "check base_url and the API key variable"
                ) from e
            except httpx.HTTPError as e:
                raise ExpertUnavailable(
                    f"expert {self.spec.name!r}: cannot reach an OpenAI-compatible server at {host} "
                    f"({type(e).__name__}: {e}). Start it (e.g. llama-server) or fix base_url."
                ) from e
            ids = [m.get("id") for m in models.get("data", [])]
            if self.spec.model not in ids:
                raise ExpertUnavailable(
                    f"expert {self.spec.name!r}: model {self.spec.model!r} is not served at {host}; "
                    f"it serves {ids}. Fix 'model' (llama-server: start it with --alias {self.spec.model})."
                )


def _seconds(ms: Any) -> float | None:
    return ms * MS if isinstance(ms, int | float) else None
