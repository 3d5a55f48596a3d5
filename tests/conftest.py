"""Shared fixtures: loopback expert servers, expert specs pointing at them, small question sets."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from der.data import Question, load_questions
from der.experts import ExpertSpec, GenerationOptions
from tests.loopback import LoopbackExpertServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
FIXTURE_WAREHOUSE = Path(__file__).parent / "fixtures" / "warehouse"
MODELS = ["alpha:1b", "beta:3b", "gamma:7b"]


@pytest.fixture
def server() -> Iterator[LoopbackExpertServer]:
    with LoopbackExpertServer(MODELS) as srv:
        yield srv


@pytest.fixture
def make_specs() -> Callable[..., list[ExpertSpec]]:
    """Specs for the loopback models; fast retries so fault tests do not sleep for seconds."""

    def make(
        base: str | list[str], backend: str = "ollama", models: list[str] = MODELS, **kw: object
    ) -> list[ExpertSpec]:
        urls = [base] if isinstance(base, str) else base
        return [
            ExpertSpec(
                name=m.split(":")[0],
                backend=backend,
                model=m,
                base_urls=urls,
                options=GenerationOptions(),
                backoff_s=(0.01, 0.02, 0.04),
                read_timeout_s=5.0,
                **kw,
            )
            for m in models
        ]

    return make


@pytest.fixture(scope="session")
def questions() -> list[Question]:
    return load_questions(limit=12).questions
