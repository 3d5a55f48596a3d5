"""Map an expert's raw text to ``yes`` / ``no`` / ``unknown`` by whole words.

``parse_answer`` is der's parser: it reads the first whole word when that word is yes/no (the
prompt asks for the answer first), else the word after "answer" / "answer is", else accepts the
text when every yes/no word in it agrees, and otherwise says ``unknown`` rather than guessing.
``reference_answer`` reproduces the reference demo's normalisation (last yes/no word wins; no
answer counts as "no"), for comparison only: the stored answer is always ``parse_answer``'s.
"""

from __future__ import annotations

import re
from typing import Literal

Answer = Literal["yes", "no", "unknown"]
ANSWERS: tuple[Answer, ...] = ("yes", "no", "unknown")
PARSER_VERSION = "words-v1"

_WORD = re.compile(r"[a-z]+")
_REF_PUNCT = str.maketrans({c: " " for c in ".,!?"})


def parse_answer(text: str | None) -> Answer:
    """Parse raw model output into yes/no/unknown by whole words (never guesses)."""
    if not text:
        return "unknown"
    words = _WORD.findall(text.lower())
    if not words:
        return "unknown"
    if words[0] in ("yes", "no"):
        return words[0]  # type: ignore[return-value]
    for i, w in enumerate(words[:-1]):
        # "Answer: yes", "the answer is no": an explicit answer slot beats stray words around it.
        nxt = words[i + 2] if words[i + 1] == "is" and i + 2 < len(words) else words[i + 1]
        if w == "answer" and nxt in ("yes", "no"):
            return nxt  # type: ignore[return-value]
    found = {w for w in words if w in ("yes", "no")}
    if len(found) == 1:
        return found.pop()  # type: ignore[return-value]
    return "unknown"


def reference_answer(text: str | None) -> Literal["yes", "no"]:
    """The reference demo's normalisation: the last yes/no word, else yes if it starts so, else no."""
    t = (text or "").lower().translate(_REF_PUNCT)
    last = None
    for w in t.split():
        if w in ("yes", "no"):
            last = w
    if last is not None:
        return last  # type: ignore[return-value]
    return "yes" if t.strip().startswith("yes") else "no"
