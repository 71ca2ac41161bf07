"""The torch side of parameter memory: a weight-sharing twin of the base model, greedy decoding, answer loss.

LoRA layers are injected into a model's module tree. Injecting them into the shared base model
would change what every other user of it computes (KV compilation, plain generation) and the
names in its state dict (so its fingerprint). The engine therefore works on a *twin*: a second
module tree, built on the ``meta`` device, whose parameters and buffers are the base model's own
tensors (no copy). Adapters go into the twin only; the base model stays exactly as it was.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from memcubed.backends.models.base import Generation
from memcubed.errors import ValidationError

__all__ = ["MIN_SHARED_PREFIX", "Until", "answer_logits", "answer_loss", "answer_losses", "common_prefix", "greedy",
           "greedy_batch", "prefix_cache", "quiet_peft", "twin"]

Until = Callable[[int, list[int]], bool]
"""(row, its tokens so far) → whether that row's continuation is settled and may stop before its limit."""

MIN_SHARED_PREFIX = 8
"""Fewer shared leading tokens than this are not worth a pass of their own (raw-text probes share a word or two)."""


def twin(model: Any) -> Any:
    """Return a second module tree for ``model`` that shares every parameter and buffer tensor with it.

    The twin computes exactly what ``model`` computes (same tensors) until adapters are injected into it.
    """
    import torch

    with torch.device("meta"):
        other = type(model)(model.config)
    other.load_state_dict(model.state_dict(), assign=True, strict=True)
    for name, buffer in model.named_buffers():
        owner, _, attr = name.rpartition(".")
        other.get_submodule(owner).register_buffer(attr, buffer, persistent=False)
    # Non-buffer tensors a module computed in __init__ (rotary ``original_inv_freq``) were made on meta.
    for (name, module), (_, source) in zip(other.named_modules(), model.named_modules(), strict=True):
        for attr, value in list(vars(module).items()):
            if isinstance(value, torch.Tensor) and value.is_meta:
                setattr(module, attr, getattr(source, attr))
        del name
    other.tie_weights()
    other.generation_config = model.generation_config
    return other.eval()


def greedy(model: Any, ids: Sequence[int], *, eos: frozenset[int], max_new_tokens: int,
           until: Until | None = None) -> Generation:
    """Continue ``ids`` greedily with ``model`` (any causal LM, adapters included) up to EOS or the limit.

    ``until`` (asked as row 0 after each new token) may end it earlier: what it gives is then a prefix of
    what it would have given.

    Raises:
        ValidationError: ``ids`` is empty or ``max_new_tokens`` < 1.
    """
    import torch
    from transformers import DynamicCache

    if not ids:
        raise ValidationError("cannot run the model on zero tokens", field="ids")
    if max_new_tokens < 1:
        raise ValidationError("max_new_tokens must be at least 1", field="max_new_tokens", value=max_new_tokens)
    start = time.perf_counter()
    cache: Any = DynamicCache(config=model.config)
    new: list[int] = []
    ttft = 0.0
    step_ids = list(ids)
    with torch.inference_mode():
        for step in range(max_new_tokens):
            out = model(input_ids=torch.tensor([step_ids], dtype=torch.long), cache=cache, use_cache=True)
            token = int(out.logits[0, -1].argmax())
            if step == 0:
                ttft = time.perf_counter() - start
            if token in eos:
                break
            new.append(token)
            if until is not None and until(0, new):
                break
            step_ids = [token]
    return Generation(text="", token_ids=new, ttft_s=ttft, total_s=time.perf_counter() - start)


def answer_loss(model: Any, prompt: Sequence[int], answer: Sequence[int]) -> float:
    """Mean negative log-likelihood (nats per token) of ``answer`` after ``prompt``, teacher-forced.

    Raises:
        ValidationError: ``answer`` is empty.
    """
    import torch

    if not answer:
        raise ValidationError("an answer needs at least one token", field="answer")
    ids = torch.tensor([[*prompt, *answer]], dtype=torch.long)
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()
    loss = torch.nn.functional.cross_entropy(logits, ids[0, len(prompt):], reduction="mean")
    return float(loss)


def greedy_batch(model: Any, prompts: Sequence[Sequence[int]], *, eos: frozenset[int], limits: Sequence[int],
                 pad_id: int, until: Until | None = None, share_prefix: bool = True) -> list[list[int]]:
    """Continue several prompts greedily in one left-padded batch; row ``i`` stops at EOS or ``limits[i]`` tokens.

    What ``greedy`` gives each prompt alone (the rows are masked from each other and from the padding,
    positions count real tokens only); each step is one forward pass over the rows still running (a row
    that has stopped leaves the batch, its cache with it). ``until`` (row, tokens so far) may stop a row
    earlier, after any new token; the batch ends when every row has.

    ``share_prefix``: the tokens every prompt begins with (the chat template's system prompt, most of a
    probe's tokens) are computed once, on one row, and that cache is copied to every row; each row's rest
    follows it, left-padded (the padding is masked, the positions continue the prefix's). A cache computed
    in order is what one pass computes, so the outputs are the same.

    Raises:
        ValidationError: a prompt is empty, or a limit is < 1.
    """
    import torch
    from transformers import DynamicCache

    if any(not p for p in prompts):
        raise ValidationError("cannot run the model on zero tokens", field="ids")
    if len(limits) != len(prompts) or any(limit < 1 for limit in limits):
        raise ValidationError("every prompt needs a token limit of at least 1", field="max_new_tokens")
    if not prompts:
        return []
    shared = common_prefix(prompts) if share_prefix and len(prompts) > 1 else 0
    shared = shared if shared >= MIN_SHARED_PREFIX else 0
    rests = [list(p[shared:]) for p in prompts]
    width = max(len(r) for r in rests)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, rest in enumerate(rests):
        ids[row, width - len(rest):] = torch.tensor(rest, dtype=torch.long)
        mask[row, width - len(rest):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0) + shared
    cache: Any = DynamicCache(config=model.config)
    outputs: list[list[int]] = [[] for _ in prompts]
    running = [True] * len(prompts)
    with torch.inference_mode():
        if shared:
            cache, _ = prefix_cache(model, prompts[0][:shared], len(prompts))
            mask = torch.cat([torch.ones((len(prompts), shared), dtype=torch.long), mask], dim=1)
        alive = list(range(len(prompts)))  # the prompts the batch's rows stand for: finished rows are dropped
        for _ in range(max(limits)):
            out = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True,
                        logits_to_keep=1)
            tokens = out.logits[:, -1].argmax(-1)
            for row, token in zip(alive, tokens.tolist(), strict=True):
                if token in eos:
                    running[row] = False
                    continue
                outputs[row].append(int(token))
                running[row] = len(outputs[row]) < limits[row] and not (until is not None and until(row, outputs[row]))
            keep = [i for i, row in enumerate(alive) if running[row]]
            if not keep:
                break
            if len(keep) < len(alive):  # a finished row would only be computed for nothing
                index = torch.tensor(keep, dtype=torch.long)
                tokens, mask, positions = tokens[index], mask[index], positions[index]
                for layer in cache.layers:
                    layer.batch_select_indices(index)
                alive = [alive[i] for i in keep]
            ids = tokens.unsqueeze(1)
            mask = torch.cat([mask, torch.ones((len(alive), 1), dtype=torch.long)], dim=1)
            positions = positions[:, -1:] + 1
    return outputs


def common_prefix(prompts: Sequence[Sequence[int]]) -> int:
    """How many leading tokens every prompt shares, leaving each at least one token of its own."""
    first, most = prompts[0], min(len(p) for p in prompts) - 1
    n = 0
    while n < most and all(p[n] == first[n] for p in prompts):
        n += 1
    return n


def answer_losses(model: Any, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], *, pad_id: int,
                  share_prefix: bool = True) -> list[float]:
    """``answer_loss`` of several (prompt, answer) pairs in one right-padded forward pass.

    ``share_prefix``: as in ``greedy_batch``, the leading tokens every prompt shares (at least
    ``MIN_SHARED_PREFIX``) are computed once, on one row, and each row's rest follows that cache (the same
    losses, to float rounding).

    Raises:
        ValidationError: an answer or a prompt is empty.
    """
    import torch

    if any(not answer or not prompt for prompt, answer in pairs):
        raise ValidationError("a loss needs a prompt and an answer of at least one token", field="answer")
    if not pairs:
        return []
    shared = common_prefix([p for p, _ in pairs]) if share_prefix and len(pairs) > 1 else 0
    shared = shared if shared >= MIN_SHARED_PREFIX else 0
    width = max(len(p) + len(a) for p, a in pairs) - shared
    ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    supervised = torch.zeros((len(pairs), width - 1), dtype=torch.bool)
    for row, (prompt, answer) in enumerate(pairs):
        seq = [*prompt[shared:], *answer]
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
        supervised[row, len(prompt) - shared - 1 : len(seq) - 1] = True
    with torch.inference_mode():
        prefix = prefix_cache(model, pairs[0][0][:shared], len(pairs)) if shared else None
        logits = answer_logits(model, ids, mask, supervised, prefix=prefix)
        nll = torch.nn.functional.cross_entropy(logits, ids[:, 1:][supervised], reduction="none")
    return [float(part.mean()) for part in torch.split(nll, [len(answer) for _, answer in pairs])]


def prefix_cache(causal_lm: Any, prefix: Sequence[int], rows: int) -> tuple[Any, int]:
    """(a cache of ``prefix`` computed once and copied to ``rows`` rows, its length). Outside inference mode the
    copies keep their gradient: a loss on the rows that follow reaches the weights through the prefix too."""
    import torch
    from transformers import DynamicCache

    once: Any = DynamicCache(config=causal_lm.config)  # its layers are read as plain (keys, values)
    causal_lm.get_decoder()(input_ids=torch.tensor([list(prefix)], dtype=torch.long), cache=once, use_cache=True)
    layers = [(layer.keys.expand(rows, -1, -1, -1).contiguous(), layer.values.expand(rows, -1, -1, -1).contiguous())
              for layer in once.layers]
    return DynamicCache(layers, config=causal_lm.config), len(prefix)


def answer_logits(causal_lm: Any, ids: Any, mask: Any, supervised: Any, *,
                  prefix: tuple[Any, int] | None = None) -> Any:
    """Float logits at the positions ``supervised`` marks (shifted: position t predicts token t + 1), row-major.

    The decoder runs on the whole sequence, the output layer only on those positions: on a small model
    the vocabulary projection of every prompt token is a good part of a forward pass. ``prefix`` (a cache
    of the tokens before ``ids`` and their count, every row the same) is attended to and not recomputed.
    """
    import torch

    decoder = causal_lm.get_decoder()
    if prefix is None:
        hidden = decoder(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
    else:
        cache, shared = prefix
        positions = torch.arange(shared, shared + ids.shape[1], dtype=torch.long).expand(ids.shape[0], -1)
        full = torch.cat([torch.ones((ids.shape[0], shared), dtype=mask.dtype), mask], dim=1)
        hidden = decoder(input_ids=ids, attention_mask=full, position_ids=positions, cache=cache,
                         use_cache=True).last_hidden_state[:, :-1]
    return causal_lm.get_output_embeddings()(hidden[supervised]).float()


@contextmanager
def quiet_peft() -> Iterator[None]:
    """Silence what peft (0.21) says that we cannot act on: a transformers 5 deprecation it triggers when
    wrapping a model, and the notice that deleting the active adapter activates another (every request
    sets its own adapters)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*was active which is now deleted.*", category=UserWarning)
        yield
