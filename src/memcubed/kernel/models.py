"""The model registry: the only language models an operation may name, as the operator configured them.

Operations, job params and every interface name a model by a configured **id** (``Settings.models``
maps ids to specs such as ``local``, ``local:<folder or hub name>`` or ``openai:<model>``). A client
never passes a spec: an id that is not configured is refused before anything is loaded, read from
disk or fetched, and the error names the configured ids, never a path. Models load lazily, once per
process, and are shared by every kernel in it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from memcubed.backends.models import make_language_model
from memcubed.backends.models.base import KVLanguageModel, LanguageModel
from memcubed.errors import ConfigurationError, ValidationError
from memcubed.settings import Settings

__all__ = ["ModelRegistry"]

_OPEN_PREFIXES = ("local:",)
_lock = threading.Lock()
_loaded: dict[tuple[str, str | None], LanguageModel] = {}  # (spec, base URL) -> model, for the whole process


class ModelRegistry:
    """The operator's allow-list of language models, by id.

    Args:
        specs: model id → spec (``local``, ``local:<model>``, ``openai:<model>``).
        default: the id operations use when they name none.
        base_url: the base URL ``openai:`` models are served at.
        api_key: the bearer key sent to it.

    Raises:
        ConfigurationError: no model is configured, or ``default`` is not one of them.
    """

    def __init__(self, specs: Mapping[str, str], *, default: str = "local", base_url: str | None = None,
                 api_key: str | None = None) -> None:
        if not specs:
            raise ConfigurationError("no language model is configured (MEMCUBED_MODELS)", field="models")
        if default not in specs:
            raise ConfigurationError("the default model is not one of the configured model ids",
                                     field="default_model", allowed=sorted(specs))
        self._specs = dict(specs)
        self.default = default
        self._base_url = base_url
        self._api_key = api_key

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelRegistry:
        """The registry ``settings`` configure (``models``, ``default_model``, ``model_base_url``/``_api_key``)."""
        return cls(settings.models, default=settings.default_model, base_url=settings.model_base_url,
                   api_key=settings.model_api_key)

    def ids(self) -> list[str]:
        """The configured model ids, sorted."""
        return sorted(self._specs)

    def loaded(self) -> list[str]:
        """The configured ids whose model this process has loaded, sorted."""
        return sorted(i for i, spec in self._specs.items() if (spec, self._base_url) in _loaded)

    def check(self, model_id: object, *, open_model: bool = False) -> str:
        """Return ``model_id`` (or the default for None) if it is configured; load nothing.

        Args:
            open_model: also require a model whose attention state memcubed can read (KV, adapters).

        Raises:
            ValidationError: ``model_id`` is not a configured id.
            ConfigurationError: ``open_model`` and the model is a closed (API) model.
        """
        chosen = self.default if model_id is None else model_id
        if not isinstance(chosen, str) or chosen not in self._specs:
            # The rejected value is not echoed: it may be a path or a URL the caller probes with.
            raise ValidationError(f"model must be one of the configured model ids: {', '.join(self.ids())}",
                                  field="model", allowed=self.ids())
        if open_model and not self._is_open(self._specs[chosen]):
            raise ConfigurationError(f"model {chosen} is an API model; this operation needs an open local model",
                                     field="model", allowed=[i for i in self.ids() if self._is_open(self._specs[i])])
        return chosen

    def get(self, model_id: str | None = None) -> LanguageModel:
        """The configured model ``model_id`` (the default for None), loaded on first use.

        Raises:
            ValidationError: ``model_id`` is not a configured id.
            DependencyMissing / BackendUnavailable: the model cannot be loaded.
        """
        chosen = self.check(model_id)
        key = (self._specs[chosen], self._base_url)
        with _lock:  # two requests naming a model that is not loaded yet load it once
            if key not in _loaded:
                _loaded[key] = make_language_model(key[0], base_url=self._base_url, api_key=self._api_key)
            return _loaded[key]

    def open(self, model_id: str | None = None) -> KVLanguageModel:
        """The configured open model ``model_id`` (KV-cache and adapters), loaded on first use.

        Raises:
            ValidationError: ``model_id`` is not a configured id.
            ConfigurationError: it names an API model.
        """
        chosen = self.check(model_id, open_model=True)
        lm = self.get(chosen)
        if not isinstance(lm, KVLanguageModel):
            raise ConfigurationError(f"model {chosen} does not expose its KV-cache", field="model")
        return lm

    @staticmethod
    def _is_open(spec: str) -> bool:
        return spec.strip() == "local" or spec.strip().startswith(_OPEN_PREFIXES)
