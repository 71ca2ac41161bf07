"""Language-model backends on real models: the packaged SmolLM2, a tiny random Llama, and real HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from memcubed.backends.models import (
    KVLanguageModel,
    LocalTransformersLM,
    OpenAICompatibleLM,
    converted_packaged_model,
    make_language_model,
    packaged_gguf_path,
)
from memcubed.errors import BackendUnavailable, ConfigurationError, ValidationError
from memcubed.testing.openai_server import serve_openai

CAPITAL = [{"role": "user", "content": "What is the capital of France?"}]


def test_the_packaged_model_answers(lm: LocalTransformersLM) -> None:
    assert "Paris" in lm.complete(CAPITAL, max_new_tokens=16)
    assert isinstance(lm, KVLanguageModel) and lm.name == "local:SmolLM2-135M-Instruct"
    assert str(lm.dtype) == "torch.float32"


def test_the_packaged_model_is_converted_once_into_the_user_cache(lm: LocalTransformersLM) -> None:
    folder = converted_packaged_model()
    assert folder == lm.source and (folder / "model.safetensors").is_file()
    assert json.loads((folder / "memcubed-conversion.json").read_text())["source"] == str(packaged_gguf_path())
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())


def test_fingerprint_is_stable_across_processes(lm: LocalTransformersLM) -> None:
    script = ("import torch; torch.set_num_threads(1)\n"
              "from memcubed.backends.models import LocalTransformersLM\n"
              "print(LocalTransformersLM().fingerprint)")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == lm.fingerprint
    assert len(lm.fingerprint) == 64


def test_a_different_model_from_a_folder_has_a_different_fingerprint(lm: LocalTransformersLM, tmp_path: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=lm.config.vocab_size, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    model.save_pretrained(tmp_path / "a")
    lm.tokenizer.save_pretrained(tmp_path / "a")
    with torch.no_grad():
        model.model.norm.weight[0] += 1e-3  # one changed weight is another model
    model.save_pretrained(tmp_path / "b")
    lm.tokenizer.save_pretrained(tmp_path / "b")

    first, second, again = (LocalTransformersLM(tmp_path / name) for name in ("a", "b", "a"))
    assert len({lm.fingerprint, first.fingerprint, second.fingerprint}) == 3
    assert again.fingerprint == first.fingerprint  # content, not load order or object identity
    assert first.name == f"local:{tmp_path / 'a'}"


def test_greedy_generation_is_deterministic_and_bounded(lm: LocalTransformersLM) -> None:
    ids = lm.chat_ids(CAPITAL)
    first, second = lm.greedy(ids, max_new_tokens=5), lm.greedy(ids, max_new_tokens=5)
    assert first.token_ids == second.token_ids and 0 < len(first.token_ids) <= 5
    assert first.total_s >= first.ttft_s > 0
    with pytest.raises(ValidationError, match="max_new_tokens"):
        lm.greedy(ids, max_new_tokens=0)
    with pytest.raises(ValidationError, match="zero tokens"):
        lm.forward([])


def test_a_seeded_sample_differs_from_greedy_and_repeats(lm: LocalTransformersLM) -> None:
    colour = [{"role": "user", "content": "Name a colour."}]
    greedy = lm.complete(colour, max_new_tokens=12)
    sampled = [lm.complete(colour, max_new_tokens=12, temperature=0.7, seed=seed) for seed in (5, 5, 6)]
    assert sampled[0] == sampled[1] and sampled[0] != greedy and sampled[2] != sampled[0]
    assert lm.complete(colour, max_new_tokens=12, temperature=0.0, seed=5) == greedy  # 0: greedy, seed unused
    with pytest.raises(ValidationError, match="temperature"):
        lm.sample(lm.chat_ids(colour), temperature=0.0, seed=1)


def test_a_missing_model_is_backend_unavailable(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="cannot load language model"):
        LocalTransformersLM(tmp_path / "no-such-model")
    with pytest.raises(ValidationError, match="dtype"):
        LocalTransformersLM(tmp_path, dtype="float33")


def test_openai_compatible_model_over_real_http(lm: LocalTransformersLM) -> None:
    with serve_openai(chat=lm, api_key="sekret") as url:
        remote = make_language_model("openai:smollm2", base_url=url, api_key="sekret")
        assert isinstance(remote, OpenAICompatibleLM) and not isinstance(remote, KVLanguageModel)
        answer = remote.complete(CAPITAL, max_new_tokens=16)
        remote.close()
        wrong = OpenAICompatibleLM("smollm2", base_url=url, api_key="wrong")
        with pytest.raises(BackendUnavailable, match="401"):
            wrong.complete(CAPITAL)
        wrong.close()
    assert answer == lm.complete(CAPITAL, max_new_tokens=16) and "Paris" in answer


def test_unreachable_server_and_bad_specs() -> None:
    with socket_free_port() as port:
        remote = OpenAICompatibleLM("m", base_url=f"http://127.0.0.1:{port}/v1", timeout=5)
        with pytest.raises(BackendUnavailable, match="request failed"):
            remote.complete(CAPITAL)
        remote.close()
    with pytest.raises(ConfigurationError, match="http"):
        OpenAICompatibleLM("m", base_url="ftp://example.org")
    with pytest.raises(ConfigurationError, match="base URL"):
        make_language_model("openai:m")
    with pytest.raises(ConfigurationError, match="unknown language model"):
        make_language_model("llama.cpp:m")
    assert make_language_model("local") is make_language_model(" local ")


@contextmanager
def socket_free_port() -> Iterator[int]:
    """A loopback port nothing listens on (bound, then released just before use)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield port
