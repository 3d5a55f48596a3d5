"""The expert interface: a spec (what to call), a call result (what happened), a protocol."""

from __future__ import annotations

import hashlib
import json
import math
import queue
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

Status = Literal["ok", "failed"]
STATUSES: tuple[Status, ...] = ("ok", "failed")

# Every spelling of the two answers that small models put first ("Yes", " no", "YES", "**yes").
_YES = {"yes"}
_NO = {"no"}


@dataclass
class GenerationOptions:
    """Generation settings sent with every call; they are part of the cache key.

    Defaults are the reference demo's (temperature 0, num_predict 24, num_ctx 2048) plus a fixed
    seed so that repeated calls are reproducible where the server honours it.
    """

    temperature: float = 0.0
    seed: int = 7
    num_ctx: int = 2048
    num_predict: int = 24
    top_logprobs: int = 5
    """How many alternatives to request for each generated token (0 turns log-probs off)."""


@dataclass
class ExpertSpec:
    """One expert: a model behind one or more servers that speak one backend's wire format."""

    name: str
    backend: str
    model: str
    base_urls: list[str]
    digest: str = ""
    """Model digest (Ollama fills it from /api/tags; give the GGUF sha256 for other servers)."""
    options: GenerationOptions = field(default_factory=GenerationOptions)
    concurrency: int = 1
    """Calls in flight per base URL (one slot per server: more changes text on small CPUs)."""
    api_key_env: str | None = None
    """Environment variable holding an API key (OpenAI-compatible servers); never stored."""
    extra_body: dict[str, Any] = field(default_factory=dict)
    """Extra request fields (``{cache_prompt = false}`` for llama-server determinism)."""
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 900.0
    retries: int = 3
    backoff_s: tuple[float, ...] = (2.0, 4.0, 8.0)
    backoff_cap_s: float = 30.0

    def identity(self) -> dict[str, Any]:
        """What makes two experts give the same answer: model, digest, options, extra fields.

        The name and URLs are left out on purpose: the same model served elsewhere reuses the cache.
        """
        return {
            "backend": self.backend,
            "model": self.model,
            "digest": self.digest,
            "options": asdict(self.options),
            "extra_body": self.extra_body,
        }

    def fingerprint(self) -> str:
        """Short hash of :meth:`identity`."""
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class CallResult:
    """What one call produced: text or a failure, with wall latency and server-reported timings."""

    status: Status
    raw_text: str | None
    error: str | None
    latency_s: float
    """Wall time of the last attempt, request sent to response read, measured by the client."""
    attempts: int
    host: str
    done_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    load_s: float | None = None
    prompt_eval_s: float | None = None
    eval_s: float | None = None
    server_total_s: float | None = None
    p_yes: float | None = None
    """P(yes) / (P(yes) + P(no)) on the first answer token, where the server gave log-probs."""


class Expert(Protocol):
    """A backend: check the server once, then answer prompts. Implementations never raise for a
    failed call; they return ``CallResult(status="failed", ...)``."""

    spec: ExpertSpec

    def preflight(self) -> None:
        """Fail fast (ExpertUnavailable) when a server or the model is missing."""
        ...

    def call(self, prompt: str) -> CallResult:
        """Ask one prompt; always returns, failures included."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class HostSlots:
    """Spread calls over an expert's base URLs with at most ``per_host`` in flight on each."""

    def __init__(self, hosts: list[str], per_host: int) -> None:
        self._free: queue.Queue[str] = queue.Queue()
        for _ in range(per_host):
            for h in hosts:
                self._free.put(h)

    @contextmanager
    def take(self) -> Iterator[str]:
        host = self._free.get()
        try:
            yield host
        finally:
            self._free.put(host)


def p_yes_from_top(tokens: list[tuple[str, list[tuple[str, float]]]]) -> float | None:
    """P(yes) vs P(no) at the first generated token that is itself yes or no.

    ``tokens`` is ``[(token, [(alt_token, logprob), ...]), ...]`` in generation order. Spellings
    ("Yes", " yes", "NO") are summed per side before normalising.
    """
    for tok, alts in tokens:
        if _side(tok) is None:
            continue
        yes = sum(math.exp(lp) for t, lp in alts if _side(t) == "yes")
        no = sum(math.exp(lp) for t, lp in alts if _side(t) == "no")
        return yes / (yes + no) if yes + no > 0 else None
    return None


def _side(token: str) -> str | None:
    t = token.strip().strip("*_\"'`").lower()
    if t in _YES:
        return "yes"
    if t in _NO:
        return "no"
    return None
