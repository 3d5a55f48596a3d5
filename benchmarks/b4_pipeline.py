"""B4: `der pipeline` on the bundled recording, installed console script, cold process (<= 60 s)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _common import RECORDING, ROOT, table, verdict


def main() -> str:
    der = shutil.which("der") or str(ROOT / ".venv" / "bin" / "der")
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        subprocess.run(
            [der, "pipeline", "--warehouse", str(RECORDING), "--out", out], check=True, capture_output=True, cwd=ROOT
        )
        seconds = time.perf_counter() - t0
        ok = (Path(out) / "report.json").exists()
    return table(
        "B4: der pipeline, cold process (target: <= 60 s)",
        ["command", "seconds", "report written", "target"],
        [("der pipeline --warehouse warehouse/recording", seconds, ok, verdict(seconds <= 60 and ok))],
    )


if __name__ == "__main__":
    main()
