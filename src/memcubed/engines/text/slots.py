"""Driving a small open model through fixed prompts: forced text, filled slots, options scored by likelihood.

A 135M-parameter model cannot keep to free JSON, but it can continue a sentence our code has begun and it
can tell which of a few fixed answers is most likely. :class:`PromptScorer` holds one chat prefix (a system
prompt and worked examples, read from a prompt file) whose KV-cache is computed once; each query then runs
only its own tokens on a copy of that cache, and either scores fixed options (one forward pass per option
token after the first: the first token of every option comes from the query's own pass) or fills a slot
greedily after text the caller forces. The structure of an answer is always the caller's; the model only
chooses among options or writes the words of one slot.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from itertools import pairwise
from typing import Any

from memcubed.backends.models.base import KVLanguageModel, Message

__all__ = ["PromptScorer", "QueryState", "chat_prompt", "continuation_logprobs", "scorer_for"]

_ROLE = re.compile(r"^## (system|user|assistant)\s*$", re.MULTILINE)


@cache
def chat_prompt(name: str) -> tuple[tuple[str, str], ...]:
    """The messages of prompt file ``prompts/<name>.txt``: blocks opened by ``## system|user|assistant`` lines.

    Raises:
        ValueError: the file has no block, or text before the first block.
    """
    text = files("memcubed.engines.text").joinpath("prompts", f"{name}.txt").read_text(encoding="utf-8")
    parts = _ROLE.split(text)
    if parts[0].strip() or len(parts) < 3:
        raise ValueError(f"prompt {name!r} must be '## role' blocks")
    return tuple((parts[i], parts[i + 1].strip()) for i in range(1, len(parts), 2))


@dataclass
class QueryState:
    """The model after a query's tokens: the next-token logits and the cache they were computed on."""

    logits: Any
    cache: Any


class PromptScorer:
    """One fixed chat prefix (system prompt + examples) of an open model, computed once and reused per query.

    Args:
        lm: the open model (its KV-cache is read and copied).
        prefix: the fixed messages every query starts with.
    """

    def __init__(self, lm: KVLanguageModel, prefix: Sequence[Message]) -> None:
        self.lm = lm
        self.prefix = [dict(m) for m in prefix]
        # The tokens every query shares: the render of the prefix up to where a following message's words begin.
        one = lm.chat_ids([*self.prefix, {"role": "user", "content": "a"}])
        two = lm.chat_ids([*self.prefix, {"role": "user", "content": "b"}])
        shared = 0
        while shared < min(len(one), len(two)) and one[shared] == two[shared]:
            shared += 1
        self._shared = one[:shared]
        self._layers: list[tuple[Any, Any]] | None = None
        self._lock = threading.Lock()
        self.prior: dict[str, float] | None = None  # a caller's content-free answer probabilities, kept here

    def query(self, messages: Sequence[Message], *, forced: str = "") -> QueryState:
        """Run ``messages`` (after the prefix) and the start of the reply, ``forced``, on a copy of the prefix cache.

        Returns:
            The logits for the reply's next token and the cache (the caller's to extend).
        """
        ids = self.lm.chat_ids([*self.prefix, *[dict(m) for m in messages]]) + (self.lm.encode(forced) if forced
                                                                                 else [])
        n = len(self._shared)
        if ids[:n] != self._shared or len(ids) == n:  # a template that re-tokenises the boundary: no reuse
            logits, kv = self.lm.forward(ids)
            return QueryState(logits, kv)
        with self._lock:
            if self._layers is None:
                _, kv = self.lm.forward(self._shared)
                self._layers = self.lm.cache_layers(kv)
        logits, kv = self.lm.forward(ids[n:], cache=self.lm.new_cache(self._layers))
        return QueryState(logits, kv)

    def option_logprobs(self, state: QueryState, options: Sequence[str]) -> list[float]:
        """The log-likelihood of each option as the continuation of ``state`` (which is left unchanged).

        Raises:
            ValueError: an option has no tokens.
        """
        return continuation_logprobs(self.lm, state, options)

    def fill(self, state: QueryState, forced: str, *, max_new_tokens: int, temperature: float = 0.0,
             seed: int = 0) -> str:
        """Force ``forced`` after ``state`` (its cache is extended) and let the model write on: greedily, or
        sampled at ``temperature`` > 0 from ``seed``.

        Returns:
            The forced text and what the model wrote, up to its end of turn, a line break or the limit.
        """
        ids = self.lm.encode(forced)
        if temperature > 0:
            written = self.lm.sample(ids, temperature=temperature, seed=seed, cache=state.cache,
                                     max_new_tokens=max_new_tokens).text
        else:
            written = self.lm.greedy(ids, cache=state.cache, max_new_tokens=max_new_tokens).text
        return (forced + written).split("\n", 1)[0].strip()

    def copy(self, state: QueryState) -> QueryState:
        """``state`` with a cache of its own (``fill`` extends the cache it is given)."""
        return QueryState(state.logits, self.lm.new_cache(self.lm.cache_layers(state.cache)))


def continuation_logprobs(lm: KVLanguageModel, state: QueryState, options: Sequence[str]) -> list[float]:
    """The log-likelihood of each option as the continuation of ``state`` (left unchanged): the first token from
    the state's logits, each further one from a forward pass on a copy of its cache.

    Raises:
        ValueError: an option has no tokens.
    """
    first = state.logits.float().log_softmax(-1)
    scores: list[float] = []
    for option in options:
        ids = lm.encode(option)
        if not ids:
            raise ValueError(f"option {option!r} has no tokens")
        score = float(first[ids[0]])
        if len(ids) > 1:
            kv = lm.new_cache(lm.cache_layers(state.cache))
            for token, following in pairwise(ids):
                logits, kv = lm.forward([token], cache=kv)
                score += float(logits.float().log_softmax(-1)[following])
        scores.append(score)
    return scores


_scorers: dict[str, weakref.WeakKeyDictionary[KVLanguageModel, PromptScorer]] = {}


def scorer_for(lm: KVLanguageModel, prompt: str) -> PromptScorer:
    """The one :class:`PromptScorer` of the prompt file ``prompt`` for ``lm``: its prefix is computed once per
    model (and let go with the model)."""
    per_model = _scorers.setdefault(prompt, weakref.WeakKeyDictionary())
    scorer = per_model.get(lm)
    if scorer is None:
        scorer = PromptScorer(lm, [{"role": role, "content": text} for role, text in chat_prompt(prompt)])
        per_model[lm] = scorer
    return scorer
