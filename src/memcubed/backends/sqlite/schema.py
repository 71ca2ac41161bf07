"""The SQLite schema as an ordered list of migrations; opening an older file migrates it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from memcubed.backends._sql import run_migrations
from memcubed.backends.lexical import lexical_text

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate", "vector_tables"]

MIGRATIONS: list[str] = [
    # 1: cubes, versions, ACL, principals, audit, full-text index
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE principals (
        name TEXT PRIMARY KEY, kind TEXT NOT NULL, is_admin INTEGER NOT NULL,
        created_at TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE cubes (
        seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
        namespace TEXT NOT NULL, owner TEXT NOT NULL, state TEXT NOT NULL, version INTEGER NOT NULL,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, occurred_at TEXT,
        importance REAL NOT NULL, model TEXT, text TEXT, forgotten INTEGER NOT NULL DEFAULT 0,
        doc TEXT NOT NULL);
    CREATE INDEX cubes_scope ON cubes (namespace, owner, state);
    CREATE TABLE cube_versions (
        cube_id TEXT NOT NULL, version INTEGER NOT NULL, op TEXT NOT NULL, actor TEXT NOT NULL,
        at TEXT NOT NULL, text TEXT, snapshot TEXT NOT NULL, PRIMARY KEY (cube_id, version));
    CREATE TABLE acl (
        cube_seq INTEGER NOT NULL REFERENCES cubes (seq), principal TEXT NOT NULL,
        "right" INTEGER NOT NULL, PRIMARY KEY (cube_seq, principal));
    CREATE INDEX acl_principal ON acl (principal, cube_seq);
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY, at TEXT NOT NULL, principal TEXT NOT NULL, op TEXT NOT NULL,
        cube_id TEXT, version INTEGER, details TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
    CREATE INDEX audit_cube ON audit (cube_id, seq);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
    CREATE VIRTUAL TABLE cube_fts USING fts5 (text, tokenize = 'porter unicode61 remove_diacritics 2');
    """,
    # 2: tag index for filtering, access statistics for the scheduler
    """
    CREATE TABLE cube_tags (cube_seq INTEGER NOT NULL REFERENCES cubes (seq), tag TEXT NOT NULL,
        PRIMARY KEY (cube_seq, tag));
    CREATE INDEX cube_tags_tag ON cube_tags (tag, cube_seq);
    ALTER TABLE cubes ADD COLUMN access_count INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE cubes ADD COLUMN last_access TEXT;
    ALTER TABLE cubes ADD COLUMN hotness REAL NOT NULL DEFAULT 0;
    INSERT INTO cube_tags (cube_seq, tag) SELECT c.seq, j.value FROM cubes c, json_each(c.doc, '$.tags') j;
    """,
    # 3: source URI per cube (to find a memory's preceding turn) and a full-text context column.
    # Released migrations are never edited: files written by them must keep migrating.
    """
    ALTER TABLE cubes ADD COLUMN source_uri TEXT;
    UPDATE cubes SET source_uri = json_extract(doc, '$.source.uri');
    CREATE INDEX cubes_source ON cubes (namespace, source_uri, seq);
    CREATE VIRTUAL TABLE cube_fts_v3 USING fts5 (text, context, tokenize = 'porter unicode61 remove_diacritics 2');
    INSERT INTO cube_fts_v3 (rowid, text, context) SELECT rowid, text, '' FROM cube_fts;
    DROP TABLE cube_fts;
    ALTER TABLE cube_fts_v3 RENAME TO cube_fts;
    """,
    # 4: which cubes were derived from which (so a change to a source marks its derivatives stale)
    """
    CREATE TABLE cube_derivations (cube_seq INTEGER NOT NULL REFERENCES cubes (seq), source_id TEXT NOT NULL,
        source_version INTEGER NOT NULL, PRIMARY KEY (cube_seq, source_id, source_version));
    CREATE INDEX cube_derivations_source ON cube_derivations (source_id, cube_seq);
    INSERT INTO cube_derivations (cube_seq, source_id, source_version)
        SELECT c.seq, json_extract(j.value, '$.id'), json_extract(j.value, '$.version')
        FROM cubes c, json_each(c.doc, '$.derived_from') j;
    """,
    # 5: API keys (hashed secrets) and background jobs
    """
    CREATE TABLE api_keys (key_id TEXT PRIMARY KEY, principal TEXT NOT NULL, secret_hash TEXT NOT NULL,
        label TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL, revoked_at TEXT);
    CREATE INDEX api_keys_principal ON api_keys (principal, created_at);
    CREATE TABLE jobs (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
        principal TEXT NOT NULL, params TEXT NOT NULL, state TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0,
        total INTEGER NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0, result TEXT, error TEXT,
        worker TEXT, created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT);
    CREATE INDEX jobs_queue ON jobs (state, seq);
    CREATE INDEX jobs_principal ON jobs (principal, seq);
    """,
    # 6: full-text change log, replayed by every process's in-process lexical index (virtual tables
    # take no triggers: the store appends to it wherever it writes cube_fts; scope changes by trigger)
    """
    CREATE TABLE fts_log (id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL);
    CREATE TRIGGER cubes_scope_changed AFTER UPDATE OF namespace, owner ON cubes
        WHEN old.namespace IS NOT new.namespace OR old.owner IS NOT new.owner
        BEGIN INSERT INTO fts_log (seq) VALUES (new.seq); END;
    """,
    # 7: erasure. FTS5's secure-delete removes a deleted row's tokens from the index segments (instead of
    # appending a delete marker beside them), and one merge rewrites what earlier deletes left behind.
    # Needs SQLite >= 3.42 to read the file afterwards.
    """
    INSERT INTO cube_fts (cube_fts, rank) VALUES ('secure-delete', 1);
    INSERT INTO cube_fts (cube_fts) VALUES ('optimize');
    """,
    # 8: rows indexed before CJK runs were split into bigrams (backends/lexical.py) are split now;
    # memcubed_lexical_text is registered by migrate() itself.
    """
    INSERT INTO fts_log (seq) SELECT rowid FROM cube_fts
        WHERE memcubed_lexical_text(text) IS NOT text OR memcubed_lexical_text(context) IS NOT context;
    UPDATE cube_fts SET text = memcubed_lexical_text(text), context = memcubed_lexical_text(context)
        WHERE memcubed_lexical_text(text) IS NOT text OR memcubed_lexical_text(context) IS NOT context;
    """,
    # 9: the durable event log (outbox): every write's events, committed with the write, and the access
    # events reads buffer in process; AUTOINCREMENT so that a seq is never reused once trimmed
    """
    CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL,
        principal TEXT NOT NULL, cube_id TEXT, version INTEGER, details TEXT NOT NULL DEFAULT '{}');
    CREATE INDEX events_kind ON events (kind, seq);
    """,
    # 10: per-principal quotas count an owner's live cubes on every write
    """
    CREATE INDEX IF NOT EXISTS cubes_owner ON cubes (owner, state);
    """,
    # 11: deleted principals stay as tombstones (their name owns their cubes); keys expire and have a scope
    """
    ALTER TABLE principals ADD COLUMN deleted_at TEXT;
    ALTER TABLE api_keys ADD COLUMN expires_at TEXT;
    ALTER TABLE api_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin';
    """,
    # 12: consent: a grant is pending until its recipient accepts it (grants made before were accepted),
    # and each principal's trust policy says whose cubes enter its prompts
    """
    ALTER TABLE acl ADD COLUMN accepted INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE principals ADD COLUMN trust TEXT NOT NULL DEFAULT 'accepted';
    """,
    # 13 (jobs helper): job leases, heartbeats and attempts; a job left running by a worker from before
    # leases gets a lease that has already run out, so the next claim takes it over
    """
    ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN lease_until TEXT;
    ALTER TABLE jobs ADD COLUMN heartbeat_at TEXT;
    UPDATE jobs SET attempts = 1 WHERE state <> 'queued';
    UPDATE jobs SET lease_until = started_at WHERE state = 'running';
    CREATE INDEX jobs_lease ON jobs (state, lease_until);
    """,
    # 14 (scheduler, issue 14): every scheduler decision with its explanation, and the owners of its targets
    # (who may read it in the scheduler log)
    """
    CREATE TABLE IF NOT EXISTS scheduler_decisions (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
        at TEXT NOT NULL, clock REAL NOT NULL, policy TEXT NOT NULL, action TEXT NOT NULL, namespace TEXT NOT NULL,
        principal TEXT, targets TEXT NOT NULL, score REAL NOT NULL, inputs TEXT NOT NULL, cost TEXT NOT NULL,
        budget TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT, job_id TEXT, result TEXT NOT NULL DEFAULT '{}');
    CREATE INDEX IF NOT EXISTS scheduler_decisions_clock ON scheduler_decisions (clock);
    CREATE TABLE IF NOT EXISTS scheduler_decision_owners (decision_seq INTEGER NOT NULL
        REFERENCES scheduler_decisions (seq), owner TEXT NOT NULL, PRIMARY KEY (decision_seq, owner));
    CREATE INDEX IF NOT EXISTS scheduler_decision_owners_owner ON scheduler_decision_owners (owner, decision_seq);
    """,
    # 15 (remember, issue 15): a memory's validity interval in event time, typed for the true_at filter
    """
    ALTER TABLE cubes ADD COLUMN valid_from TEXT;
    ALTER TABLE cubes ADD COLUMN valid_to TEXT;
    """,
    # -- dense (issue 16 item 2): the vectors of a long memory's later windows, scored with its own --
    """
    CREATE TABLE IF NOT EXISTS cube_chunk (seq INTEGER NOT NULL REFERENCES cubes (seq), n INTEGER NOT NULL,
        emb BLOB NOT NULL, PRIMARY KEY (seq, n)) WITHOUT ROWID;
    """,
    # 17 (lexns, issue 16): rows indexed before the shared vocabulary rules (backends/vocabulary.py: acronyms
    # that spell stopwords, irregular forms) are re-indexed; memcubed_lexical_text is registered by migrate()
    """
    INSERT INTO fts_log (seq) SELECT rowid FROM cube_fts
        WHERE memcubed_lexical_text(text) IS NOT text OR memcubed_lexical_text(context) IS NOT context;
    UPDATE cube_fts SET text = memcubed_lexical_text(text), context = memcubed_lexical_text(context)
        WHERE memcubed_lexical_text(text) IS NOT text OR memcubed_lexical_text(context) IS NOT context;
    """,
    # -- multihop (issue 16 item 7): entity aliases learnt from each memory's text (backends/alias.py); memories
    # stored before this migration gain theirs when they are re-indexed --
    """
    CREATE TABLE IF NOT EXISTS cube_alias (seq INTEGER NOT NULL REFERENCES cubes (seq), term TEXT NOT NULL,
        alias TEXT NOT NULL, PRIMARY KEY (seq, term, alias)) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS cube_alias_term ON cube_alias (term, seq);
    """,
    # -- reembed (issue 16 item 2): the vectors of another embedder, staged until the store switches to it
    # (n = 0: a cube's main vector, n >= 1: its windows; backends/_staging.py) --
    """
    CREATE TABLE IF NOT EXISTS vec_stage (seq INTEGER NOT NULL REFERENCES cubes (seq), n INTEGER NOT NULL,
        emb BLOB NOT NULL, PRIMARY KEY (seq, n)) WITHOUT ROWID;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: Any, target: int = SCHEMA_VERSION) -> int:
    """Bring the schema of ``conn`` up to ``target``, one transaction per migration; return the version.

    Raises:
        ConfigurationError: the file was written by a newer memcubed.
    """
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    conn.create_function("memcubed_lexical_text", 1, _lexical_text, deterministic=True)

    def read_version() -> int:
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        return int(row[0]) if row else 0

    @contextmanager
    def locked() -> Iterator[None]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def write_version(version: int) -> None:
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    return run_migrations([_statements(m) for m in MIGRATIONS], target, read_version=read_version, locked=locked,
                          execute=conn.execute, write_version=write_version)


def vector_tables(dim: int) -> list[str]:
    """DDL of the vector index: binary-quantised vec0 for candidates, float32 rows for exact rescoring."""
    return [
        "CREATE VIRTUAL TABLE IF NOT EXISTS cube_vec USING vec0 ("
        f"namespace TEXT PARTITION KEY, owner TEXT PARTITION KEY, embedding bit[{int(dim)}])",
        "CREATE TABLE IF NOT EXISTS cube_emb (seq INTEGER PRIMARY KEY REFERENCES cubes (seq), emb BLOB NOT NULL)",
    ]


def _lexical_text(value: str | None) -> str | None:
    return None if value is None else lexical_text(value)


def _statements(script: str) -> list[str]:
    """Split a migration script into statements, keeping trigger bodies whole."""
    out: list[str] = []
    buffer = ""
    for line in script.strip().splitlines():
        buffer += line + "\n"
        stripped = buffer.strip()
        if stripped.endswith(";") and (not stripped.upper().startswith("CREATE TRIGGER") or stripped.endswith("END;")):
            out.append(stripped)
            buffer = ""
    if buffer.strip():
        out.append(buffer.strip())
    return out
