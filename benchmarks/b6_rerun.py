"""B6: re-run of prefetch over a complete cache of all 3,270 bundled questions: zero backend calls,
<= 5 s for the whole `der prefetch` process. The cache is first built against a loopback server
(3 experts, tmax 3); only the re-run is timed."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, table, verdict

sys.path.insert(0, str(ROOT))


def main(n_questions: int | None = None) -> str:
    from der.config import parse_experts
    from der.data import load_questions
    from der.prefetch import prefetch
    from der.prompts import get_template
    from tests.loopback import LoopbackExpertServer

    models = ["a:1b", "b:3b", "c:7b"]
    with LoopbackExpertServer(models) as srv, tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "experts.toml"
        cfg.write_text(
            f"[defaults]\nbase_url = '{srv.base}'\n"
            + "".join(f"[[experts]]\nname = '{m[0]}'\nmodel = '{m}'\n" for m in models)
        )
        root = Path(tmp) / "wh"
        qs = load_questions(limit=n_questions).questions
        specs = parse_experts(
            {"defaults": {"base_url": srv.base}, "experts": [{"name": m[0], "model": m} for m in models]}
        )
        t0 = time.perf_counter()
        built = prefetch(qs, specs, root, get_template("ref-v1"), tmax=3, batch_size=500, flush_rows=5000)
        build_s = time.perf_counter() - t0
        hits = sum(srv.hits.values())
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "der.cli",
                "prefetch",
                "--experts",
                str(cfg),
                "--warehouse",
                str(root),
                "--tmax",
                "3",
                "--limit",
                str(len(qs)),
            ],
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
        rerun_s = time.perf_counter() - t0
        rerun_hits = sum(srv.hits.values()) - hits
    return table(
        "B6: prefetch re-run over a complete cache (target: zero calls, <= 5 s)",
        ["questions", "calls in cache", "build s (not the target)", "re-run calls", "re-run s", "target"],
        [(len(qs), built.ok, build_s, rerun_hits, rerun_s, verdict(rerun_hits == 0 and rerun_s <= 5))],
    )


if __name__ == "__main__":
    main()
