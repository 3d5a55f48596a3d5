"""Expert configuration files (TOML): which experts to call, where, and how.

```toml
[defaults]                       # optional: applied to every expert below
backend = "ollama"
base_url = "http://localhost:11434"

[[experts]]
name = "llama3.2-3b"
model = "llama3.2:3b-instruct-q4_K_M"
# base_url = ["http://gpu1:11434", "http://gpu2:11434"]   # several hosts share the calls
# [experts.options]  temperature, seed, num_ctx, num_predict, top_logprobs
```
"""

from __future__ import annotations

import tomllib
from dataclasses import fields
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from der.errors import ConfigError
from der.experts import BACKENDS, ExpertSpec, GenerationOptions

REFERENCE_EXPERTS = "reference-ollama"
_SPEC_KEYS = {f.name for f in fields(ExpertSpec)} - {"base_urls", "options"} | {"base_url", "options"}
_OPTION_KEYS = {f.name for f in fields(GenerationOptions)}


def bundled_configs() -> dict[str, Path]:
    """Expert configs shipped with der, by name (``reference-ollama``, ``llama-local``)."""
    root = resources.files("der.configs")
    return {Path(p.name).stem: Path(str(p)) for p in root.iterdir() if p.name.endswith(".toml")}


def load_experts(source: str | Path = REFERENCE_EXPERTS) -> list[ExpertSpec]:
    """Read expert specs from a TOML path or a bundled config name, validating every field."""
    path = Path(source)
    if not path.exists():
        bundled = bundled_configs()
        if str(source) not in bundled:
            raise ConfigError(
                f"experts config {str(source)!r} not found: give a TOML path or one of {', '.join(sorted(bundled))}"
            )
        path = bundled[str(source)]
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML ({e})") from e
    return parse_experts(doc, str(path))


def parse_experts(doc: dict[str, Any], where: str = "config") -> list[ExpertSpec]:
    """Build and validate specs from a parsed config document."""
    defaults = doc.get("defaults", {})
    entries = doc.get("experts")
    if not entries:
        raise ConfigError(f"{where}: no [[experts]] entries")
    specs = [
        _spec({**defaults, **e, "options": {**defaults.get("options", {}), **e.get("options", {})}}, where)
        for e in entries
    ]
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{where}: expert names must be unique; repeated: {', '.join(dupes)}")
    return specs


def _spec(entry: dict[str, Any], where: str) -> ExpertSpec:
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: every expert needs a non-empty 'name'")
    unknown = set(entry) - _SPEC_KEYS
    if unknown:
        raise ConfigError(f"{where}: expert {name!r}: unknown keys {sorted(unknown)}; valid: {sorted(_SPEC_KEYS)}")
    bad_opts = set(entry["options"]) - _OPTION_KEYS
    if bad_opts:
        raise ConfigError(
            f"{where}: expert {name!r}: unknown options {sorted(bad_opts)}; valid: {sorted(_OPTION_KEYS)}"
        )
    backend = entry.get("backend", "ollama")
    if backend not in BACKENDS:
        raise ConfigError(f"{where}: expert {name!r}: unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if "model" not in entry:
        raise ConfigError(f"{where}: expert {name!r}: 'model' is required")
    urls = entry.get("base_url", "http://localhost:11434")
    urls = [urls] if isinstance(urls, str) else list(urls)
    for u in urls:
        try:
            p = urlparse(str(u))
            p.port  # noqa: B018 - parsing the port validates it (and an IPv6 host's brackets)
        except ValueError:
            p = None
        if p is None or p.scheme not in ("http", "https") or not p.netloc:
            raise ConfigError(f"{where}: expert {name!r}: base_url {u!r} is not an http(s)://host:port URL")
    opts = GenerationOptions(**entry["options"])
    if opts.num_predict < 1 or opts.num_ctx < 1 or opts.temperature < 0 or opts.top_logprobs < 0:
        raise ConfigError(f"{where}: expert {name!r}: options must be positive (got {opts})")
    rest = {k: v for k, v in entry.items() if k not in ("name", "backend", "model", "base_url", "options")}
    if "backoff_s" in rest:
        rest["backoff_s"] = tuple(rest["backoff_s"])
    if int(rest.get("concurrency", 1)) < 1:
        raise ConfigError(f"{where}: expert {name!r}: concurrency must be at least 1")
    return ExpertSpec(name=name, backend=backend, model=str(entry["model"]), base_urls=urls, options=opts, **rest)
