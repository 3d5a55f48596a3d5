"""Expert backends behind one protocol, registered by name (``ollama``, ``openai``)."""

from der.errors import ConfigError
from der.experts.base import CallResult, Expert, ExpertSpec, GenerationOptions
from der.experts.ollama import OllamaExpert
from der.experts.openai import OpenAIExpert

BACKENDS: dict[str, type] = {"ollama": OllamaExpert, "openai": OpenAIExpert}


def make_expert(spec: ExpertSpec) -> Expert:
    """Instantiate the backend class registered under ``spec.backend``."""
    try:
        cls = BACKENDS[spec.backend]
    except KeyError:
        raise ConfigError(
            f"expert {spec.name!r}: unknown backend {spec.backend!r}; choose one of {', '.join(BACKENDS)}"
        ) from None
    return cls(spec)


__all__ = ["BACKENDS", "CallResult", "Expert", "ExpertSpec", "GenerationOptions", "make_expert"]
