"""report.html in a real headless browser (Debian's chromium, where installed): it renders, shows
every figure, loads nothing from the network and logs no console errors."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from der.pipeline import PipelineConfig, run_pipeline
from der.synthetic import make_warehouse
from der.train import TrainConfig

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--enable-logging=stderr",
    "--v=0",
]


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wh")
    make_warehouse(root, n_questions=45)
    out = tmp_path_factory.mktemp("report")
    run_pipeline(PipelineConfig(warehouse=str(root), out=out, train=TrainConfig(steps=256), frontier_alphas=(0.0, 1.0)))
    return out


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_html_renders_in_chromium_without_console_errors(report_dir, tmp_path):
    page = (report_dir / "report.html").as_uri()
    shot = tmp_path / "report.png"
    profile = tmp_path / "profile"
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1200,2400", page],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 20_000, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
    dom = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert dom.count("<img") >= 6 and "Protocol <code>learned-stop</code>" in dom
    assert "<script" not in dom
