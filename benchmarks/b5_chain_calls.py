"""B5: calls per question that prefetch makes, against naive chain enumeration, tmax 1..6.

Real prefetch runs against a loopback server (deterministic answers swayed by the handed-on
answer), 3 and 5 experts; target: <= experts x 3 at every tmax."""

from __future__ import annotations

import sys
import tempfile

from _common import ROOT, table, verdict

sys.path.insert(0, str(ROOT))


def main(n_questions: int = 20) -> str:
    from der.data import load_questions
    from der.experts import ExpertSpec
    from der.prefetch import prefetch
    from der.prompts import get_template
    from tests.loopback import LoopbackExpertServer

    qs = load_questions(limit=n_questions).questions
    rows = []
    for e in (3, 5):
        models = [f"m{i}:1b" for i in range(e)]
        for tmax in range(1, 7):
            with LoopbackExpertServer(models) as srv, tempfile.TemporaryDirectory() as root:
                specs = [
                    ExpertSpec(name=m.split(":")[0], backend="ollama", model=m, base_urls=[srv.base]) for m in models
                ]
                stats = prefetch(qs, specs, root, get_template("ref-v1"), tmax=tmax)
                calls = sum(srv.hits.values()) / n_questions
            naive = sum(e**d for d in range(1, tmax + 1))
            rows.append((e, tmax, f"{calls:.2f}", naive, e * 3, verdict(calls <= e * 3 and stats.failed == 0)))
    return table(
        "B5: calls per question, prefetch vs naive chain enumeration (target: <= experts x 3)",
        ["experts", "tmax", "prefetch calls / question", "naive E+E^2+..+E^tmax", "bound E x 3", "target"],
        rows,
    )


if __name__ == "__main__":
    main()
