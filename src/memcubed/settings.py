"""All settings in one pydantic-settings object (environment variables prefixed ``MEMCUBED_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """memcubed configuration; every field can be set as ``MEMCUBED_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="MEMCUBED_", extra="forbid")

    db: str = Field(default="memcubed.db", description="the store: a SQLite file path (the embedded default) or a"
                    " postgresql:// DSN (the scale-out store)")
    principal: str = Field(default="admin", description="acting principal of the Python API and CLI")
    embedder: str = Field(default="local", description="none | local | local:<model> | static | static:<folder>"
                          " | openai:<model>")
    query_runtime: Literal["fp32", "int8"] = Field(default="int8", description="what a local embedder embeds"
                                                   " queries with: int8 (a dynamically quantised copy of its ONNX"
                                                   " export, checked against fp32 when made and loaded; fp32 when"
                                                   " it cannot be made) or fp32 (the documents' encoder); stored"
                                                   " vectors are fp32 either way")
    embedder_base_url: str | None = None
    embedder_api_key: str | None = None
    models: dict[str, str] = Field(default_factory=lambda: {"local": "local"},
                                   description="the language models operations may name: id -> spec (local, "
                                   "local:<folder or hub name>, openai:<model>); clients only ever send an id")
    default_model: str = Field(default="local", description="the model id used when an operation names none")
    model_base_url: str | None = Field(default=None, description="base URL of openai: models in `models`")
    model_api_key: str | None = Field(default=None, description="bearer key sent to model_base_url")
    max_text_chars: int = Field(default=100_000, ge=1, description="largest plaintext payload accepted")
    max_batch: int = Field(default=10_000, ge=1, description="largest add_many batch accepted")
    auto_accept_shares: bool = Field(default=False, description=(
        "grants made by share are accepted at once, instead of pending until the recipient accepts them"))
    hotness_half_life_s: float = Field(default=7 * 24 * 3600, gt=0, description="decay of the hotness score")
    adapter_slots: int = Field(default=4, ge=1, description="LoRA adapters kept loaded per model (LRU)")
    train_threads: int = Field(default=0, ge=0, le=256, description="torch threads a consolidate or recompile"
                               " computes with while it runs; 0: $OMP_NUM_THREADS when set, else the"
                               " cores other work leaves idle (cores less the load average; 1 to 4)")
    exact_vectors_up_to: int = Field(default=2_000, ge=0, description="namespaces up to this size get exact "
                                     "vector search; larger ones a binary-quantised candidate stage")
    lexical_index: bool = Field(default=True, description="SQLite: rank full-text matches in an in-process index "
                                "(exactly FTS5's bm25, ~10x faster at 100k cubes; loads on a process's first "
                                "search); false ranks every query inside FTS5")
    upstream_base_url: str | None = Field(default=None, description="OpenAI-compatible base URL the chat proxy "
                                          "forwards to, e.g. https://api.openai.com/v1")
    upstream_api_key: str | None = Field(default=None, description="bearer key sent to the upstream")
    upstream_model: str | None = Field(default=None, description="model sent upstream; unset: the request's model")
    upstream_timeout_s: float = Field(default=120.0, gt=0, description="seconds per upstream request")
    audit_key: SecretStr | None = Field(default=None, min_length=16, description="the audit chain's HMAC key "
                                         "(else a key file; needed by every server sharing a PostgreSQL store)")
    audit_key_file: str | None = Field(default=None, description="file holding the audit key (default: <db>.auditkey"
                                       " for SQLite, the state dir for PostgreSQL)")
    audit_head_file: str | None = Field(default=None, description="the signed audit head checkpoint (default: "
                                        "<db>.audithead for SQLite, the state dir for PostgreSQL)")
    pg_pool_size: int = Field(default=8, ge=1, description="most PostgreSQL connections one process opens")
    pg_connect_timeout_s: float = Field(default=10.0, gt=0, description="wait for the PostgreSQL server or a free"
                                        " pooled connection this long before BackendUnavailable")
    access_stats: Literal["buffered", "inline"] = Field(
        default="buffered", description="buffered: a read records its access in process and a background writer"
        " appends them to the event log, folded into cube stats off the request path; inline: every read writes"
        " its stats in a write transaction of its own (the old behaviour, kept as the benchmark's baseline)")
    events_flush_interval_s: float = Field(default=1.0, gt=0, description="the background writer flushes buffered"
                                           " access events at least this often (each flush takes the store's write"
                                           " lock once: 0.2 s cost concurrent writers 3x their throughput on"
                                           " PostgreSQL with 4 reader processes, see bench/readwrite.py)")
    events_flush_batch: int = Field(default=500, ge=1, description="the background writer also flushes as soon as"
                                    " this many access events are buffered")
    events_retention_s: float = Field(default=7 * 24 * 3600, gt=0, description="event log entries older than this"
                                      " are deleted once folded into cube stats")
    max_body_bytes: int = Field(default=32 * 2**20, ge=1, description="REST: largest request body accepted, counted"
                                " as it streams in (413 budget_exceeded beyond it, before any parsing)")
    max_meta_bytes: int = Field(default=64 * 1024, ge=1, description="largest `meta` of a cube, as serialized JSON"
                                " (every version keeps a copy)")
    max_tags: int = Field(default=64, ge=0, description="most tags on one cube")
    max_tag_chars: int = Field(default=64, ge=1, description="longest tag")
    max_search_k: int = Field(default=1000, ge=1, description="most hits one search (or chat) may ask for")
    max_page: int = Field(default=1000, ge=1, description="most entries one page of history, audit or list may ask"
                          " for")
    quota_cubes: int = Field(default=1_000_000, ge=0, description="most live (not deleted) cubes one principal may"
                             " own; 0 = unlimited")
    quota_bytes: int = Field(default=10 * 2**30, ge=0, description="most stored characters (text and metadata of"
                             " live cubes) one principal may own; 0 = unlimited")
    rate_limit_per_s: float = Field(default=1000.0, ge=0, description="server: requests per second each principal"
                                    " may send on average (token bucket, per process); 0 = unlimited")
    rate_limit_burst: int = Field(default=2000, ge=1, description="server: requests a principal may send at once"
                                  " before rate_limit_per_s applies")
    # -- portable bundles (export_bundle / import_bundle) -------------------------------------------------
    bundle_max_bytes: int = Field(default=2 * 2**30, ge=1, description="largest bundle file import_bundle reads"
                                  " (and the most bytes its entries may unpack to, all together)")
    bundle_max_entries: int = Field(default=100_000, ge=2, description="most files one bundle may hold")
    bundle_max_entry_bytes: int = Field(default=512 * 2**20, ge=1, description="largest single file in a bundle,"
                                        " unpacked")
    bundle_max_ratio: float = Field(default=100.0, ge=1, description="most a bundle entry over 1 MiB may expand"
                                    " when unpacked (refuses zip bombs before inflating them)")

    # -- the LLM planner (kernel.planner) --------------------------------------------------------------------
    planner_max_steps: int = Field(default=16, ge=1, le=64, description="most steps one plan may run; steps beyond"
                                   " it are rejected as over budget")
    planner_max_write_steps: int = Field(default=8, ge=0, description="most steps of one plan that write (every"
                                         " operation with an audit name)")
    planner_max_job_steps: int = Field(default=2, ge=0, description="most steps of one plan that queue long work"
                                       " (cache, consolidate)")
    planner_max_args_chars: int = Field(default=20_000, ge=1, description="largest arguments of one planned step,"
                                        " as JSON; a model writing a long memory is refused (add it by hand)")
    planner_context_events: int = Field(default=40, ge=0, le=1000, description="recent events (the principal may"
                                        " see) shown to the planner's model")
    planner_context_memories: int = Field(default=12, ge=0, le=200, description="memories named by those events,"
                                          " shown (quoted) to the planner's model")
    planner_memory_chars: int = Field(default=400, ge=1, description="each memory shown to the planner is cut to"
                                      " this many characters")
    planner_max_new_tokens: int = Field(default=512, ge=16, le=8192, description="the longest plan a model may"
                                        " write, in tokens")

    # -- durable jobs and blob garbage collection (issue 14 item 5) --------------------------------------
    job_lease_s: float = Field(default=30.0, gt=0, description="a claimed job's lease: its worker renews it (every"
                               " third of it, and on each progress report); a job whose lease ran out is claimed"
                               " again by another worker")
    job_max_attempts: int = Field(default=3, ge=1, description="a job is claimed at most this many times (a worker"
                                  " died, or a transient error); then it fails with attempts_exhausted")
    blob_gc_grace_s: float = Field(default=3600.0, ge=0, description="blob garbage collection keeps every blob"
                                   " written (or re-put) less than this long ago, so in-flight jobs' fresh blobs"
                                   " are never collected")
    blob_gc_interval_s: float = Field(default=3600.0, ge=0, description="a job worker collects unreferenced blobs"
                                      " this often while idle; 0 = never (run `memcubed gc`)")

    # -- the scheduler (issue 14) -------------------------------------------------------------------------
    scheduler_enabled: bool = Field(default=True, description="run the scheduler loop in serve (and in"
                                    " `worker --scheduler`): a tick every scheduler_interval_s; ticks of several"
                                    " processes never overlap")
    scheduler_interval_s: float = Field(default=60.0, gt=0, description="seconds between scheduler ticks")
    scheduler_policy: str = Field(default="cost_aware", description="cost_aware | lru | lfu | lmcache")
    scheduler_model: str | None = Field(default=None, description="the model id cache jobs compile with"
                                        " (default_model when unset)")
    scheduler_half_life_s: float = Field(default=3600.0, gt=0, description="hotness half-life of the scheduler's"
                                         " usage signals (cube stats keep hotness_half_life_s)")
    scheduler_budgets: dict[str, float | None] = Field(default_factory=dict, description=(
        "store budgets: activation_bytes, activation_memory_bytes, adapter_slots, train_s_per_hour,"
        " compile_tokens_per_hour (absent: unlimited)"))
    scheduler_namespace_budgets: dict[str, dict[str, float | None]] = Field(
        default_factory=dict, description="per-namespace budgets: namespace -> the same fields")
    scheduler_train_s_per_fact: float = Field(default=30.0, gt=0, description="estimated training seconds per"
                                              " consolidated fact (budgets train_s_per_hour)")
    scheduler_consolidate_min_reads: int = Field(default=5, ge=1, description="reads before a fact is consolidated")
    scheduler_consolidate_min_importance: float = Field(default=0.7, ge=0, le=1, description="importance a fact"
                                                        " needs before it is consolidated")
    scheduler_stable_s: float = Field(default=3600.0, ge=0, description="seconds a fact must be unchanged before"
                                      " it is consolidated")
    scheduler_max_actions: int = Field(default=16, ge=1, description="most cache/consolidate/recompile decisions"
                                       " taken per tick")

    # -- working set (issue 14, item 3: the per-namespace hot prefix chat reuses) --------------------------
    working_set_max_tokens: int = Field(default=1024, ge=1, description="largest working set, in tokens of the "
                                        "rendered memories (its KV prefix)")
    working_set_max_cubes: int = Field(default=64, ge=1, description="most memories one working set holds")
    # -- conversation memory (remember, issue 15) ---------------------------------------------------------
    extractor: str | None = Field(default=None, description="the model id (of `models`) that extracts facts from"
                                  " remembered turns and resolves them against known ones; unset: turns only")
    summarizer: str | None = Field(default=None, description="the model id that writes per-session summaries of"
                                   " remembered turns; unset: no summaries")
    remember_max_turns: int = Field(default=1000, ge=1, description="most turns one remember call takes")
    extract_batch_turns: int = Field(default=20, ge=1, le=200, description="turns per extraction request")
    extract_max_tokens: int = Field(default=1024, ge=16, description="longest extraction answer asked for")
    extract_max_attempts: int = Field(default=3, ge=1, le=100, description="tries of a failing extraction (the"
                                      " first inline, the rest as queued extract jobs)")
    extract_retry_temperature: float = Field(default=0.7, ge=0.0, le=2.0, description="the temperature of the"
                                             " retries of a failed extraction (json, lines): each samples from a"
                                             " seed derived from its turns and try, so it does not repeat the"
                                             " greedy first answer, and repeats across runs; 0: retries greedy")
    extract_slot_retries: int = Field(default=0, ge=0, le=5, description="slots: more sentences asked for a turn"
                                      " whose sentence was rejected for its own words (copied or unsupported),"
                                      " each sampled at extract_retry_temperature from a seed of the turn")
    resolve_contradict: Literal["change", "cloze", "model", "off"] = Field(
        default="off", description="slots: what lets the local resolver contradict (close) a known fact. off (the"
        " default): never, the fact is added and both stay open (the packaged 135M model's signals do not tell a"
        " real change from a fact that still holds: 3 of 12 held-out false changes closed under `change`);"
        " change: the model answers 'changed' and the new fact says a change (a change word the known fact"
        " lacks); cloze: the new fact says a change and the known fact fits 'It is no longer true that ...'"
        " better than 'It is still true that ...' after it (7 of 12 false changes closed); model: the model's"
        " answer as it is. An API resolver (json/lines) is not affected")
    duplicate_similarity: float = Field(default=0.95, gt=0.0, le=1.0, description="cosine similarity at or above"
                                        " which a turn or fact duplicates a known one (no-op)")
    remember_conversations: bool = Field(default=False, description="chat and the OpenAI-compatible proxy run"
                                         " `remember` on every conversation passed through (all its turns and the"
                                         " reply, facts extracted when an extractor is set), instead of storing"
                                         " the last exchange only when a request asks to remember")
    # -- retrieval: query decomposition (issue 16, item 5) -------------------------------------------------
    decomposer: str | None = Field(default=None, description="the model id (of `models`) that splits a hybrid"
                                   " search's question into sub-queries (when TextConfig.split_weight > 0); unset"
                                   " or failing: the offline split by names and conjuncts")

    # -- the scheduler owns the working set; deleted cubes' retention (issue 14, helper sched2) -----------
    scheduler_working_sets: bool = Field(default=True, description="scheduler ticks choose and refresh every"
                                         " reader's working set of each namespace (working_set decisions)")
    scheduler_working_set_min_reads: int = Field(default=3, ge=1, description="reads by a principal before the"
                                                 " scheduler makes a memory a member of their working set")
    scheduler_working_set_refresh: float = Field(default=0.25, ge=0, description="relative gain a new choice of"
                                                 " members needs before it replaces a working set")
    scheduler_working_set_cadence_s: float = Field(default=3600.0, gt=0, description="after this long any better"
                                                   " choice of members replaces a working set")
    deleted_retention_s: float = Field(default=30 * 24 * 3600.0, ge=0, description="a soft-deleted cube can be"
                                       " undeleted for this long; then `memcubed gc` and the scheduler loop purge"
                                       " it (its text and blobs erased, a tombstone and the audit kept)")
    # -- dense (issue 16 item 2) --
    embed_windows: bool = Field(default=False, description="also embed every later window of a memory longer"
                                " than the embedder's window (scored by its best vector); off by default: on"
                                " LongMemEval-S dev the max over windows ranked long answers too high")
    # -- extraction answer format (issue 15 leftovers; helper rembench) ------------------------------------
    extract_format: Literal["json", "lines", "slots"] = Field(
        default="json", description="what the extractor is asked to answer: one JSON object (json), or one `turn"
        " id | subject | fact` line per fact (lines); both parse to the same schema. slots (an open local model"
        " only, e.g. the packaged SmolLM2): at most one fact per turn, its structure forced by memcubed and its"
        " sentence written by the model, then checked against the turn; resolution by the likelihood of four"
        " fixed answers (engines.text.extract_local, resolve_local)")
