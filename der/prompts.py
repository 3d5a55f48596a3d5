"""Prompt templates, versioned: the version is part of every call's cache key.

``ref-v1`` is the reference demo's protocol verbatim (see docs/reference.md): a first prompt, and
a knowledge-transfer prompt (KTP) that hands the next expert the previous expert's *normalised*
answer. Because only ``yes``/``no`` is passed on, an expert's reply depends on (question, previous
answer, expert) alone, and every chain up to any tmax needs at most experts x 3 distinct calls.

What an ``unknown`` answer passes on: nothing. The next expert receives the first-step prompt, as
if it were asked first; its reply is then the same cached call as its own first step. An
unparseable reply carries no information, so passing "no" (as the reference does implicitly)
would inject an answer nobody gave.
"""

from __future__ import annotations

from dataclasses import dataclass

from der.errors import ConfigError

FIRST_REF_V1 = """{question}

IMPORTANT:
Output ONLY one token as the final answer: yes or no."""

KTP_REF_V1 = """{question}

This is the answer to the given question from another model:
{prev_answer}

Using the other model's answer, refine and give your own answer.
DO NOT mention other models in your output.

IMPORTANT:
Output ONLY one token as the final answer: yes or no."""


@dataclass(frozen=True)
class PromptTemplate:
    """A first-step and a KTP template; ``version`` enters the cache key."""

    version: str
    first: str
    ktp: str

    def render(self, question_text: str, prev_answer: str | None) -> str:
        """The prompt for a question given the answer passed on (None at the first step)."""
        if prev_answer is None:
            return self.first.format(question=question_text)
        return self.ktp.format(question=question_text, prev_answer=prev_answer)


TEMPLATES: dict[str, PromptTemplate] = {
    "ref-v1": PromptTemplate("ref-v1", FIRST_REF_V1, KTP_REF_V1),
}
DEFAULT_TEMPLATE = "ref-v1"


def get_template(version: str) -> PromptTemplate:
    """Look up a template by version, naming the known versions when it is unknown."""
    try:
        return TEMPLATES[version]
    except KeyError:
        raise ConfigError(f"unknown prompt template {version!r}; known: {', '.join(TEMPLATES)}") from None


STATES = ("none", "yes", "no")
"""What an expert can be handed: nothing (first step), or a previous yes / no."""


def passed_on(answer: str | None) -> str | None:
    """What the next expert is told, given the previous normalised answer."""
    return answer if answer in ("yes", "no") else None
