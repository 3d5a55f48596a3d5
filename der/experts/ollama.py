"""Ollama's native API: ``POST /api/chat`` with ``stream: false``, options inside ``options``."""

from __future__ import annotations

from typing import Any

import httpx

from der.errors import ExpertUnavailable
from der.experts.base import p_yes_from_top
from der.experts.http import HttpExpert, get_json

# done_reason values that mean the model produced nothing (a load/unload acknowledgement).
NOTHING_GENERATED = frozenset({"load", "unload"})
NS = 1e-9


class OllamaExpert(HttpExpert):
    """An Ollama model. Preflight checks ``/api/tags`` on every host and records the digest."""

    path = "/api/chat"

    def payload(self, prompt: str) -> dict[str, Any]:
        o = self.spec.options
        body: dict[str, Any] = {
            "model": self.spec.model,
            "messages": [{"role": "user", "content": prompt}],
            "stream": False,
            "think": False,
            "options": {
                "temperature": o.temperature,
                "seed": o.seed,
                "num_ctx": o.num_ctx,
                "num_predict": o.num_predict,
            },
        }
        if o.top_logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = o.top_logprobs
        return body | self.spec.extra_body

    def parse(self, body: dict[str, Any]) -> dict[str, Any]:
        text = (body.get("message") or {}).get("content") or ""
        reason = body.get("done_reason")
        out: dict[str, Any] = {
            "raw_text": text,
            "done_reason": reason,
            "prompt_tokens": body.get("prompt_eval_count"),
            "completion_tokens": body.get("eval_count"),
            "load_s": _seconds(body.get("load_duration")),
            "prompt_eval_s": _seconds(body.get("prompt_eval_duration")),
            "eval_s": _seconds(body.get("eval_duration")),
            "server_total_s": _seconds(body.get("total_duration")),
        }
        lps = body.get("logprobs")
        if isinstance(lps, list):
            out["p_yes"] = p_yes_from_top(
                [(t["token"], [(a["token"], a["logprob"]) for a in t.get("top_logprobs") or []]) for t in lps]
            )
        if reason in NOTHING_GENERATED:
            out["error"] = f"done_reason {reason!r}: the model generated nothing"
        elif not text.strip():
            out["error"] = f"empty content (done_reason {reason!r})"
        return out

    def truncation(self, prompt: str, prompt_tokens: int | None) -> str | None:
        """Ollama silently keeps the end of a prompt longer than num_ctx, and leaves cached prompt
        tokens out of prompt_eval_count; so only a count at the context limit reveals a cut."""
        limit = self.spec.options.num_ctx - self.spec.options.num_predict
        if prompt_tokens is not None and prompt_tokens >= limit:
            return (
                f"prompt truncated: {prompt_tokens} prompt tokens reached num_ctx {self.spec.options.num_ctx} "
                f"minus num_predict; raise num_ctx in the expert's options"
            )
        return None

    def preflight(self) -> None:
        for host in self.spec.base_urls:
            host = host.rstrip("/")
            try:
                tags = get_json(self.client, host + "/api/tags")
            except httpx.HTTPError as e:
                raise ExpertUnavailable(
                    f"expert {self.spec.name!r}: cannot reach Ollama at {host} ({type(e).__name__}: {e}). "
                    "Start it with `ollama serve` or fix base_url."
                ) from e
            models = {m.get("name"): m for m in tags.get("models", [])} | {
                m.get("model"): m for m in tags.get("models", [])
            }
            entry = models.get(self.spec.model) or models.get(f"{self.spec.model}:latest")
            if entry is None:
                raise ExpertUnavailable(
                    f"expert {self.spec.name!r}: model {self.spec.model!r} is not on {host}. "
                    f"Run: ollama pull {self.spec.model}"
                )
            digest = entry.get("digest") or ""
            if digest and not self.spec.digest:
                self.spec.digest = digest
            elif digest and digest != self.spec.digest:
                raise ExpertUnavailable(
                    f"expert {self.spec.name!r}: {host} serves {self.spec.model} with digest {digest[:12]}, "
                    f"expected {self.spec.digest[:12]}; every host of one expert must serve the same model"
                )


def _seconds(ns: Any) -> float | None:
    return ns * NS if isinstance(ns, int | float) else None
