"""Language models: a local transformers model with its KV-cache exposed, and an OpenAI-compatible client."""

from __future__ import annotations

from memcubed.backends.models.base import Generation, KVLanguageModel, LanguageModel, Message
from memcubed.backends.models.local import LocalTransformersLM
from memcubed.backends.models.openai import OpenAICompatibleLM
from memcubed.backends.models.packaged import converted_packaged_model, packaged_gguf_path
from memcubed.errors import ConfigurationError

__all__ = [
    "Generation",
    "KVLanguageModel",
    "LanguageModel",
    "LocalTransformersLM",
    "Message",
    "OpenAICompatibleLM",
    "converted_packaged_model",
    "make_language_model",
    "packaged_gguf_path",
]

_LOADED: dict[str, LanguageModel] = {}


def make_language_model(spec: str, *, base_url: str | None = None, api_key: str | None = None) -> LanguageModel:
    """Build a language model from a spec string; local models load once per process.

    Specs: ``local`` (packaged SmolLM2-135M-Instruct, offline); ``local:<hub name or folder>``;
    ``openai:<model>`` (needs ``base_url``).

    Raises:
        ConfigurationError: the spec is not understood or lacks a base URL.
        DependencyMissing: the local model's packages are missing.
        BackendUnavailable: the local model cannot be loaded.
    """
    spec = spec.strip()
    if spec in _LOADED:
        return _LOADED[spec]
    model: LanguageModel
    if spec == "local":
        model = LocalTransformersLM()
    elif spec.startswith("local:"):
        model = LocalTransformersLM(spec.removeprefix("local:"))
    elif spec.startswith("openai:"):
        if not base_url:
            raise ConfigurationError("an openai: language model needs a base URL", field="base_url")
        return OpenAICompatibleLM(spec.removeprefix("openai:"), base_url=base_url, api_key=api_key)
    else:
        raise ConfigurationError(f"unknown language model {spec!r}: use local, local:<model> or openai:<model>",
                                 field="model")
    _LOADED[spec] = model
    return model
