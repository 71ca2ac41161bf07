"""Schemas of generation with memory: ``generate`` and ``chat``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, model_validator

from memcubed.schemas.base import Input, Name
from memcubed.schemas.ops import SearchFilters

__all__ = [
    "ChatMessage",
    "ChatRequest",
    "ChatResult",
    "GenerationResult",
]


class ChatMessage(Input):
    """One turn of a conversation, as OpenAI-compatible APIs write it."""

    role: str = Field(pattern=r"^(system|user|assistant)$")
    content: str = Field(max_length=200_000, pattern=r"^[^\x00]*$",
                         description="no NUL character: a remembered turn must be storable on every backend")


class ChatRequest(Input):
    """Input of ``chat``: answer the conversation's last user turn with the principal's memories.

    The memories come from ``activation_id`` (an activation cube's exact sources) or else from a
    search for the last user turn (``k`` hits, ``filters`` applied; ``k=0`` searches nothing), led by the
    principal's working set of the namespace when there is one (``use_working_set``).
    """

    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    namespace: Name = "default"
    k: int = Field(default=5, ge=0, le=50)
    filters: SearchFilters = Field(default_factory=SearchFilters)
    activation_id: str | None = None
    remember: bool = Field(default=False, description="store the user turn and the reply as plaintext memories")
    conversation: str | None = Field(default=None, max_length=512,
                                     description="conversation id; remembered turns get source uri chat:<id>")
    max_new_tokens: int = Field(default=128, ge=1, le=4096)
    use_working_set: bool = Field(default=True, description="lead with your working set of the namespace (if any);"
                                  " false: plain retrieval only")
    question_date: datetime | None = Field(default=None, description=(
        "when the question is asked: retrieval ranks memories of the time it names first (see search)"))

    @model_validator(mode="after")
    def _ends_with_user(self) -> ChatRequest:
        if self.messages[-1].role != "user" or not self.messages[-1].content.strip():
            raise ValueError("the last message must be a non-empty user turn")
        return self


class ChatResult(BaseModel):
    """Output of ``chat``: the reply, which memories shaped it and how they reached the model."""

    text: str
    used: list[str] = Field(default_factory=list, description="plaintext cube ids given to the model, in order")
    via: str = Field(description="kv (attention state injected), simulated (byte-stable prompt prefix) or none")
    activation_id: str | None = None
    prefix_tokens: int = 0
    reused_tokens: int = Field(default=0, description="memory tokens whose KV was loaded instead of computed")
    computed_tokens: int = Field(default=0, description="memory tokens whose KV was computed for this request")
    working_set_id: str | None = Field(default=None, description="the working set cube leading the memories")
    working_set_skipped: str | None = Field(default=None, description="why your working set was not served")
    remembered: list[str] = Field(default_factory=list, description="ids of the turns stored as new memories")
    evidence: dict[str, list[str]] = Field(default_factory=dict, description=(
        "for each extracted fact used, the turn cubes it came from (given to the model with it)"))
    sources: dict[str, str] = Field(default_factory=dict, description=(
        "for each memory used, where it came from (type[:uri][#ref]; a remembered turn: "
        "conversation:<id>#<turn>, a fact: extracted:<conversation>#<its turns>)"))
    retrieve_ms: float = 0.0
    prefill_ms: float = Field(default=0.0, description="time to load or compute the memories' KV")
    ttft_ms: float = 0.0
    total_ms: float = 0.0


class GenerationResult(BaseModel):
    """Output of ``generate``: the continuation and what was injected."""

    text: str
    injected: list[str] = Field(default_factory=list, description="activation cube ids whose KV was injected")
    adapters: list[str] = Field(default_factory=list, description="parameter cube ids whose adapters were active")
    prefix_tokens: int = 0
    ttft_ms: float
    total_ms: float
    load_ms: float = 0.0
