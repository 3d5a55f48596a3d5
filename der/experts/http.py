"""JSON over HTTP with the reference's retry policy (3 retries, backoff 2, 4, 8 s, capped at 30).

Transient failures (connection errors, timeouts, 408/429/5xx, a body that is not JSON) are
retried; anything else returns at once. Nothing here invents a response: the caller gets the
parsed body or an error string, and the wall latency of the last attempt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from der.experts.base import CallResult, ExpertSpec, HostSlots

log = logging.getLogger("der.experts")
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# English text runs 3-5 characters per token; a prompt that yields fewer tokens than
# len(prompt) / 12 was cut by the server, not tokenised.
CHARS_PER_TOKEN_MAX = 12


@dataclass
class HttpOutcome:
    """Result of :func:`post_json`: ``body`` is set when the server answered with JSON."""

    status_code: int | None
    body: Any
    error: str | None
    latency_s: float
    attempts: int


def make_client(spec: ExpertSpec) -> httpx.Client:
    """An httpx client with the spec's connect/read timeouts and one pooled connection per slot."""
    timeout = httpx.Timeout(spec.read_timeout_s, connect=spec.connect_timeout_s)
    limits = httpx.Limits(max_connections=max(1, spec.concurrency) * len(spec.base_urls))
    return httpx.Client(timeout=timeout, limits=limits, trust_env=False)


def _delay(spec: ExpertSpec, attempt: int) -> float:
    steps = spec.backoff_s or (0.0,)
    base = steps[attempt - 1] if attempt <= len(steps) else steps[-1] * 2 ** (attempt - len(steps))
    return min(base, spec.backoff_cap_s)


def _error_text(body: Any) -> str | None:
    """The error an API put in a JSON body, if any (Ollama: str; OpenAI: {"message": ...})."""
    if not isinstance(body, dict) or "error" not in body or body["error"] in (None, ""):
        return None
    err = body["error"]
    if isinstance(err, dict):
        return str(err.get("message") or err)
    return str(err)


def post_json(
    client: httpx.Client,
    url: str,
    payload: dict[str, Any],
    spec: ExpertSpec,
    headers: dict[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> HttpOutcome:
    """POST ``payload`` and parse the JSON reply, retrying transient failures per ``spec``."""
    attempt = 0
    while True:
        attempt += 1
        t0 = time.perf_counter()
        status: int | None = None
        body: Any = None
        try:
            resp = client.post(url, json=payload, headers=headers)
            latency = time.perf_counter() - t0
            status = resp.status_code
            try:
                body, bad_json = resp.json(), False
            except ValueError:
                body, bad_json = None, True
            detail = _error_text(body)
            if not 200 <= status < 300:  # redirects are not followed, by design
                error = f"HTTP {status}" + (f": {detail}" if detail else "")
                transient = status in TRANSIENT_STATUS
            elif bad_json:
                error = f"HTTP {status}: response is not valid JSON: {resp.text[:200]!r}"
                transient = True  # a body cut mid-stream; asking again may succeed
            else:
                error = f"HTTP {status}: {detail}" if detail else None
                transient = False
        except httpx.TimeoutException as e:
            latency = time.perf_counter() - t0
            error, transient = f"timeout ({type(e).__name__}) after {latency:.1f} s", True
        except httpx.TransportError as e:
            latency = time.perf_counter() - t0
            error, transient = f"{type(e).__name__}: {e}", True
        if error is None or not transient or attempt > spec.retries:
            return HttpOutcome(status, body, error, latency, attempt)
        wait = _delay(spec, attempt)
        log.warning("%s: %s; retry %d/%d in %.0f s", url, error, attempt, spec.retries, wait)
        sleep(wait)


def get_json(client: httpx.Client, url: str, headers: dict[str, str] | None = None) -> Any:
    """GET a JSON document once (preflight); raises httpx errors for the caller to explain."""
    resp = client.get(url, headers=headers, timeout=httpx.Timeout(30.0, connect=10.0))
    resp.raise_for_status()
    return resp.json()


class HttpExpert:
    """Shared call path for HTTP backends: take a host slot, POST, validate, never invent.

    Subclasses set ``path`` and implement ``payload`` (request body for a prompt) and ``parse``
    (fields of a :class:`CallResult` from a JSON body, with ``error`` set when the body holds no
    usable answer).
    """

    path: str

    def __init__(self, spec: ExpertSpec, client: httpx.Client | None = None) -> None:
        self.spec = spec
        self.client = client or make_client(spec)
        self._slots = HostSlots([u.rstrip("/") for u in spec.base_urls], max(1, spec.concurrency))

    def headers(self) -> dict[str, str] | None:
        return None

    def redact(self, text: str) -> str:
        """Remove the API key from text a server sent back (an echoed header, say)."""
        headers = self.headers() or {}
        key = headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return text.replace(key, "***") if key else text

    def payload(self, prompt: str) -> dict[str, Any]:
        raise NotImplementedError

    def parse(self, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def truncation(self, prompt: str, prompt_tokens: int | None) -> str | None:
        """An error when the server evidently did not read the whole prompt, else None.

        Default (servers that count every prompt token): far fewer tokens than the text can hold.
        """
        if prompt_tokens is not None and prompt_tokens * CHARS_PER_TOKEN_MAX < len(prompt):
            return (
                f"prompt truncated: the server evaluated {prompt_tokens} tokens of a {len(prompt)}-character "
                "prompt; raise the server's context size"
            )
        return None

    def call(self, prompt: str) -> CallResult:
        """Ask one prompt on the least busy host; failures come back as ``status='failed'``."""
        with self._slots.take() as host:
            out = post_json(self.client, host + self.path, self.payload(prompt), self.spec, self.headers())
        fields: dict[str, Any] = {}
        error = out.error
        if error is None:
            if not isinstance(out.body, dict):
                error = f"unexpected response type {type(out.body).__name__}"
            else:
                try:
                    fields = self.parse(out.body)
                except (KeyError, IndexError, TypeError, ValueError) as e:
                    error = f"malformed response ({type(e).__name__}: {e})"
                    fields = {}
                error = fields.pop("error", None) or error or self.truncation(prompt, fields.get("prompt_tokens"))
        if error is not None:
            fields.pop("raw_text", None)
            return CallResult("failed", None, self.redact(error), out.latency_s, out.attempts, host, **fields)
        return CallResult("ok", fields.pop("raw_text"), None, out.latency_s, out.attempts, host, **fields)

    def close(self) -> None:
        self.client.close()
