"""Fixtures of the engine tests: the packaged SmolLM2 loaded once per session, and a tiny second model."""

from __future__ import annotations

from pathlib import Path

import pytest

from memcubed.backends.models import LocalTransformersLM, make_language_model


@pytest.fixture(scope="session")
def lm() -> LocalTransformersLM:
    """The packaged SmolLM2-135M-Instruct in fp32, shared by every test that asks (one torch thread:
    the machine is small and shared, and fp32 results do not depend on it beyond 1e-6)."""
    import torch

    torch.set_num_threads(1)
    model = make_language_model("local")
    assert isinstance(model, LocalTransformersLM)
    return model


@pytest.fixture(scope="session")
def tiny_lm(lm: LocalTransformersLM, tmp_path_factory: pytest.TempPathFactory) -> LocalTransformersLM:
    """A different, randomly initialised two-layer Llama with SmolLM2's tokenizer, loaded from a folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder: Path = tmp_path_factory.mktemp("tiny-llama")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=lm.config.vocab_size, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    return LocalTransformersLM(folder)
