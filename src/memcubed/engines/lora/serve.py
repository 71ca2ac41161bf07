"""Serving adapters: one peft multi-adapter model per base model, with bounded slots and LRU unloading.

The server owns a twin of the base model (``model.twin``: same weight tensors, its own module tree),
so loading adapters never changes what the base model computes for anyone else. Adapters are
loaded under their blob digest; a request names the adapters it wants, they are loaded (evicting
the least recently used ones beyond ``slots``), activated together (their updates add up), and the
prompt is continued greedily. Everything runs under the base model's lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from memcubed.backends.models.base import Generation
from memcubed.backends.models.local import LocalTransformersLM
from memcubed.engines.lora.model import greedy, quiet_peft, twin
from memcubed.engines.lora.serialize import Adapter
from memcubed.errors import BudgetExceeded, ConfigurationError, IntegrityError, ValidationError

__all__ = ["AdapterServer", "attach"]

Loader = Callable[[], Adapter]


def _name(key: str) -> str:
    """A peft adapter name for a blob digest (peft names become module attribute names)."""
    return "a_" + "".join(ch if ch.isalnum() else "_" for ch in key)


def attach(peft_model: Any, model: Any, name: str, adapter: Adapter) -> Any:
    """Load ``adapter`` as ``name`` into ``peft_model`` (creating it around ``model`` when None); return it.

    Raises:
        IntegrityError: the adapter's tensors do not fit the model (wrong names or shapes).
    """
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

    config = LoraConfig(**adapter.config.peft_kwargs())
    with quiet_peft():
        if peft_model is None:
            peft_model = get_peft_model(model, config, adapter_name=name)
        else:
            peft_model.add_adapter(name, config)
    try:
        outcome = set_peft_model_state_dict(peft_model, adapter.state, adapter_name=name)
    except RuntimeError as exc:  # shape mismatch
        with quiet_peft():
            peft_model.delete_adapter(name)
        raise IntegrityError(f"adapter tensors do not fit the model: {exc}") from exc
    unexpected = [key for key in getattr(outcome, "unexpected_keys", []) if "lora_" in key]
    if unexpected:
        with quiet_peft():
            peft_model.delete_adapter(name)
        raise IntegrityError(f"adapter tensors do not fit the model: {unexpected[0]}", tensor=unexpected[0])
    peft_model.eval()
    return peft_model


class AdapterServer:
    """Generates with sets of adapters on one base model, holding at most ``slots`` adapters loaded.

    Args:
        lm: the base model.
        slots: adapters kept loaded; the least recently used one is unloaded first.

    Raises:
        ValidationError: ``slots`` < 1.
    """

    def __init__(self, lm: LocalTransformersLM, *, slots: int = 4) -> None:
        if slots < 1:
            raise ValidationError("slots must be at least 1", field="slots", value=slots)
        self.lm = lm
        self.slots = slots
        self.fingerprint = lm.fingerprint  # before any twin exists (it reads the base state dict)
        self._model: Any = None
        self._loaded: OrderedDict[str, str] = OrderedDict()  # key -> peft adapter name, least recent first
        self._lock = threading.RLock()
        self.loads = 0
        self.evictions = 0

    @property
    def loaded(self) -> list[str]:
        """Keys of the loaded adapters, least recently used first."""
        with self._lock:
            return list(self._loaded)

    def unload(self, key: str) -> bool:
        """Unload the adapter ``key``; return whether it was loaded."""
        with self._lock:
            name = self._loaded.pop(key, None)
            if name is None:
                return False
            with quiet_peft():
                self._model.delete_adapter(name)
            return True

    def retain(self, keep: Callable[[str], bool]) -> list[str]:
        """Unload every loaded adapter whose key ``keep`` rejects (e.g. its blob was purged); return those keys."""
        with self._lock:
            dropped = [key for key in self._loaded if not keep(key)]
            for key in dropped:
                self.unload(key)
            return dropped

    def generate(self, prompt: Sequence[int], adapters: Sequence[tuple[str, Loader]], *,
                 max_new_tokens: int = 64) -> Generation:
        """Continue ``prompt`` greedily with the adapters ``(key, loader)`` active together.

        A loader is called only for an adapter that is not loaded yet. With no adapters the base
        model answers.

        Raises:
            BudgetExceeded: more adapters than slots are asked for at once.
            ConfigurationError: an adapter belongs to another base model.
            IntegrityError: an adapter does not fit the model.
        """
        keys = list(dict.fromkeys(key for key, _ in adapters))
        if len(keys) > self.slots:
            raise BudgetExceeded(f"{len(keys)} adapters asked for at once; the server has {self.slots} slots",
                                 field="slots", requested=len(keys), slots=self.slots)
        with self.lm._lock, self._lock:
            if not keys:
                return self._greedy(self.lm.model, prompt, max_new_tokens)
            loaders = dict(adapters)
            for key in keys:
                self._ensure(key, loaders[key], protect=keys)
            self._model.base_model.set_adapter([self._loaded[k] for k in keys], inference_mode=True)
            # The twin itself, whose LoRA layers now run the active adapters: PeftModel.forward looks up a
            # single "active adapter" config, which is meaningless for several and stale after an unload.
            return self._greedy(self._model.base_model.model, prompt, max_new_tokens)

    def _ensure(self, key: str, loader: Loader, *, protect: Sequence[str]) -> None:
        if key in self._loaded:
            self._loaded.move_to_end(key)
            return
        adapter = loader()
        if adapter.fingerprint != self.fingerprint:
            raise ConfigurationError("the adapter was trained on another base model", field="model",
                                     expected=self.fingerprint, actual=adapter.fingerprint)
        name = _name(key)
        self._model = attach(self._model, twin(self.lm.model) if self._model is None else None, name, adapter)
        self._loaded[key] = name
        self.loads += 1
        # Evict after loading, so the peft model never drops to zero adapters.
        while len(self._loaded) > self.slots:
            victim = next(k for k in self._loaded if k not in protect)
            self.unload(victim)
            self.evictions += 1

    def _greedy(self, model: Any, prompt: Sequence[int], max_new_tokens: int) -> Generation:
        gen = greedy(model, prompt, eos=self.lm.eos_token_ids, max_new_tokens=max_new_tokens)
        return Generation(text=self.lm.decode(gen.token_ids), token_ids=gen.token_ids, ttft_s=gen.ttft_s,
                          total_s=gen.total_s)
