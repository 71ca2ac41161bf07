"""All settings in one pydantic-settings object (environment variables prefixed ``MEMCUBED_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """memcubed configuration; every field can be set as ``MEMCUBED_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="MEMCUBED_", extra="forbid")

    db: str = Field(default="memcubed.db", description="SQLite file path (the embedded default)")
    principal: str = Field(default="admin", description="acting principal of the Python API and CLI")
    embedder: str = Field(default="local", description="none | local | local:<model> | openai:<model>")
    embedder_base_url: str | None = None
    embedder_api_key: str | None = None
    max_text_chars: int = Field(default=100_000, ge=1, description="largest plaintext payload accepted")
    max_batch: int = Field(default=10_000, ge=1, description="largest add_many batch accepted")
    hotness_half_life_s: float = Field(default=7 * 24 * 3600, gt=0, description="decay of the hotness score")
    adapter_slots: int = Field(default=4, ge=1, description="LoRA adapters kept loaded per model (LRU)")
    exact_vectors_up_to: int = Field(default=2_000, ge=0, description="namespaces up to this size get exact "
                                     "vector search; larger ones a binary-quantised candidate stage")
