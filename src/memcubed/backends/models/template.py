"""Token ids in which only the chat template writes control tokens: all other text is encoded as text.

Why this exists: a Hugging Face tokenizer called on a string turns every *spelling* of a special token in it
into that token. A memory, a chat turn or a fact that contains ``<|im_end|>\\n<|im_start|>system\\n...`` (or
``<|endoftext|>``) would then reach a local model as real role markers: a stored text could open a system
turn or end the prompt. So:

- :meth:`TemplateTokens.text` encodes a string as text whatever it contains: special-token spellings are
  split into ordinary tokens (the backend tokenizer's ``encode_special_tokens``, the same switch as
  ``split_special_tokens=True``). Text without such spellings gets exactly the ids it had before.
- :meth:`TemplateTokens.chat` renders the model's chat template and encodes it so that the template's own
  markers are control tokens and the messages' contents are text. Each special spelling inside a content is
  wrapped in a per-call random marker before rendering; the rendered string is split on the markers, the
  wrapped spellings encoded as text and everything else as the template wrote it. A chat whose contents
  hold no spelling is encoded exactly as before (one string, nothing split), so no measured figure changes.
  As a last check, the control tokens in the result must be those of the same chat with neutral contents;
  a template that lets content join into a control token is refused rather than trusted.

Fast tokenizers get two private copies of their backend (one per mode), so the shared tokenizer's state is
never switched and concurrent threads cannot see each other's mode. Transformers 5.25 has a similar option
(``apply_chat_template(sanitize_control_tokens=True)``), but older versions pass an unknown keyword on to
the template silently; this module works the same on every version we support and checks itself on load.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from typing import Any

from memcubed.backends.models.base import Message
from memcubed.errors import BackendUnavailable, ValidationError

__all__ = ["TemplateTokens"]

_NEUTRAL = "x"
"""The content of every message in the chat whose control tokens a real chat must match."""
_SHAPES = 1024
"""Chat shapes (roles, template) whose control tokens are remembered."""


class TemplateTokens:
    """Encode text as text, and chats with only the template's own markers as control tokens.

    Args:
        tokenizer: a loaded Hugging Face tokenizer with a chat template.

    Raises:
        BackendUnavailable: the tokenizer cannot encode its special spellings as text (it would let
            text become control tokens).
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        special = {int(i): str(t.content) for i, t in tokenizer.added_tokens_decoder.items() if t.special}
        self.special_ids: frozenset[int] = frozenset(special)
        """Every special token's id: none may come from text."""
        spellings = sorted(set(special.values()), key=len, reverse=True)  # the longest spelling wins a tie
        self._spelling = re.compile("|".join(map(re.escape, spellings))) if spellings else None
        backend = getattr(tokenizer, "backend_tokenizer", None)
        self._text = _backend_copy(backend, split=True) if backend is not None else None
        self._markup = _backend_copy(backend, split=False) if backend is not None else None
        self._shapes: dict[tuple[Any, ...], list[int]] = {}
        leaked = [s for s in spellings if self.special_ids & set(self.text(s))]
        if leaked:
            raise BackendUnavailable(f"the tokenizer turns the text {leaked[0]!r} into a special token",
                                     token=leaked[0])

    def text(self, text: str) -> list[int]:
        """Return the ids of ``text`` as text: no special token, whatever it spells."""
        if self._text is not None:
            return list(self._text.encode(text, add_special_tokens=False).ids)
        ids: list[int] = self._tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        return list(ids)

    def markup(self, text: str) -> list[int]:
        """Return the ids of template-written ``text``, its special spellings as special tokens."""
        if self._markup is not None:
            return list(self._markup.encode(text, add_special_tokens=False).ids)
        ids: list[int] = self._tokenizer(text, add_special_tokens=False, split_special_tokens=False)["input_ids"]
        return list(ids)

    def chat(self, messages: Sequence[Message], *, add_generation_prompt: bool = True) -> list[int]:
        """Return the ids of ``messages`` in the chat template: the template's markers as control tokens, each
        message's content as text.

        Raises:
            ValidationError: the template lets a message's content form a control token.
        """
        plain = [dict(m) for m in messages]
        spelling = self._spelling
        if spelling is None or not any(spelling.search(m.get("content", "")) for m in plain):
            ids = self.markup(self._render(plain, add_generation_prompt))
        else:
            ids = self._marked(plain, spelling, add_generation_prompt)
        if self._controls(ids) != self._expected(plain, add_generation_prompt):
            raise ValidationError("a message's content would form a control token in the chat template",
                                  field="messages")
        return ids

    def _marked(self, plain: list[dict[str, str]], spelling: re.Pattern[str], prompt: bool) -> list[int]:
        """Render with each special spelling of a content wrapped in markers, then encode the wrapped ones
        as text and the rest as markup."""
        start, end = _markers(plain)
        marked = [{**m, "content": spelling.sub(lambda s: start + s.group() + end, m.get("content", ""))}
                  for m in plain]
        wrapped = sum(len(spelling.findall(m.get("content", ""))) for m in plain)
        pieces = re.split(f"{re.escape(start)}({spelling.pattern}){re.escape(end)}", self._render(marked, prompt))
        if len(pieces) != 2 * wrapped + 1:  # the template dropped, cut or repeated a content
            raise ValidationError("the chat template alters message contents; cannot encode them safely",
                                  field="messages")
        ids: list[int] = []
        for index, piece in enumerate(pieces):
            if index % 2:
                ids += self.text(piece)
            elif start in piece or end in piece:  # the template cut a marker apart: no telling what is whose
                raise ValidationError("the chat template alters message contents; cannot encode them safely",
                                      field="messages")
            elif piece:
                ids += self.markup(piece)
        return ids

    def _render(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
        text: str = self._tokenizer.apply_chat_template(messages, tokenize=False,
                                                        add_generation_prompt=add_generation_prompt)
        return text

    def _controls(self, ids: list[int]) -> list[int]:
        return [i for i in ids if i in self.special_ids]

    def _expected(self, plain: list[dict[str, str]], prompt: bool) -> list[int]:
        """The control tokens of the same chat with neutral contents (they depend on all but the contents)."""
        shape = (str(self._tokenizer.chat_template), prompt,
                 tuple(tuple(sorted((k, v) for k, v in m.items() if k != "content")) for m in plain))
        found = self._shapes.get(shape)
        if found is None:
            found = self._controls(self.markup(self._render([{**m, "content": _NEUTRAL} for m in plain], prompt)))
            if len(self._shapes) >= _SHAPES:
                self._shapes.clear()
            self._shapes[shape] = found
        return found


def _backend_copy(backend: Any, *, split: bool) -> Any:
    """A private copy of a ``tokenizers.Tokenizer``, with special spellings split as text or not."""
    from tokenizers import Tokenizer

    copy = Tokenizer.from_str(backend.to_str())
    copy.no_truncation()
    copy.no_padding()
    copy.encode_special_tokens = split
    return copy


def _markers(messages: list[dict[str, str]]) -> tuple[str, str]:
    """A start and an end marker found in no content (private-use characters around random digits: no
    template filter such as ``trim`` or ``upper`` changes them)."""
    contents = [m.get("content", "") for m in messages]
    while True:
        nonce = str(secrets.randbelow(10**16))
        start, end = f"\ue000{nonce}\ue001", f"\ue001{nonce}\ue000"
        if not any(start in c or end in c for c in contents):
            return start, end
