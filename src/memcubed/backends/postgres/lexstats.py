"""The maintained per-namespace BM25 statistics of the PostgreSQL backend.

``backends.bm25`` ranks by the searched namespace's documents (full-text rows with at least one
token), their total length and each lexeme's document frequency. Summing those over the namespace
on every query made lexical search scan the namespace; here two tables hold them and a row trigger
on ``cube_fts`` keeps them, in the transaction of each write (insert, delete, text or context
update), so a search reads one row per query lexeme:

- ``lex_ns_stats (namespace, documents, tokens)``: a namespace without documents has no row;
- ``lex_ns_terms (namespace, lexeme, df)``: a lexeme no document holds has no row.

Concurrency: the trigger first updates the namespace's ``lex_ns_stats`` row, whose row lock then
orders every writer of that namespace until commit (the increments never read a stale count), and
it touches lexemes in sorted order. The backend's write lock serialises its own writers anyway;
the trigger keeps counts right for any writer of the tables.
"""

from __future__ import annotations

__all__ = ["LEX_STATS_MIGRATION", "NAMESPACE_STATS_SQL", "TERM_STATS_SQL"]

NAMESPACE_STATS_SQL = """SELECT c.namespace, count(*) AS documents, sum(f.len) AS tokens
    FROM cube_fts f JOIN cubes c ON c.seq = f.seq WHERE f.len > 0 GROUP BY c.namespace"""
"""The namespaces' documents and tokens, recomputed from the full-text rows (backfill and tests)."""

TERM_STATS_SQL = """SELECT c.namespace, u.lexeme, count(*) AS df
    FROM cube_fts f JOIN cubes c ON c.seq = f.seq CROSS JOIN LATERAL unnest(f.tsv) AS u
    GROUP BY c.namespace, u.lexeme"""
"""Each namespace's lexemes and the documents holding them, recomputed from the full-text rows."""

_APPLY = """CREATE FUNCTION memcubed_lex_stats_apply(ns text, doc tsvector, len integer, sign integer)
    RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF ns IS NULL OR coalesce(len, 0) <= 0 THEN
            RETURN;  -- a row without tokens is no document
        END IF;
        INSERT INTO lex_ns_stats AS s (namespace, documents, tokens) VALUES (ns, sign, sign * len)
            ON CONFLICT (namespace) DO UPDATE SET documents = s.documents + sign, tokens = s.tokens + sign * len;
        INSERT INTO lex_ns_terms AS t (namespace, lexeme, df)
            SELECT ns, u.lexeme, sign FROM unnest(doc) AS u ORDER BY u.lexeme
            ON CONFLICT (namespace, lexeme) DO UPDATE SET df = t.df + sign;
        IF sign < 0 THEN
            DELETE FROM lex_ns_terms WHERE namespace = ns AND lexeme = ANY(tsvector_to_array(doc)) AND df <= 0;
            DELETE FROM lex_ns_stats WHERE namespace = ns AND documents <= 0;
        END IF;
    END $$"""

_ON_FTS = """CREATE FUNCTION memcubed_lex_stats_fts() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND OLD.seq = NEW.seq AND OLD.tsv = NEW.tsv AND OLD.len = NEW.len THEN
            RETURN NULL;
        END IF;
        IF TG_OP IN ('DELETE', 'UPDATE') THEN
            PERFORM memcubed_lex_stats_apply((SELECT namespace FROM cubes WHERE seq = OLD.seq), OLD.tsv, OLD.len, -1);
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            PERFORM memcubed_lex_stats_apply((SELECT namespace FROM cubes WHERE seq = NEW.seq), NEW.tsv, NEW.len, 1);
        END IF;
        RETURN NULL;
    END $$"""

_ON_CUBES = """CREATE FUNCTION memcubed_lex_stats_move() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        row record;
    BEGIN
        FOR row IN SELECT tsv, len FROM cube_fts WHERE seq = NEW.seq LOOP
            PERFORM memcubed_lex_stats_apply(OLD.namespace, row.tsv, row.len, -1);
            PERFORM memcubed_lex_stats_apply(NEW.namespace, row.tsv, row.len, 1);
        END LOOP;
        RETURN NULL;
    END $$"""

LEX_STATS_MIGRATION: list[str] = [
    "CREATE TABLE lex_ns_stats (namespace TEXT PRIMARY KEY, documents BIGINT NOT NULL, tokens BIGINT NOT NULL)",
    """CREATE TABLE lex_ns_terms (namespace TEXT NOT NULL, lexeme TEXT NOT NULL, df BIGINT NOT NULL,
        PRIMARY KEY (namespace, lexeme))""",
    _APPLY,
    _ON_FTS,
    _ON_CUBES,
    # The triggers come before the backfill: creating them waits for open writes of cube_fts to commit
    # and holds later ones until this migration commits, so the backfill sees every row exactly once.
    """CREATE TRIGGER cube_fts_lex_stats AFTER INSERT OR DELETE OR UPDATE ON cube_fts
        FOR EACH ROW EXECUTE FUNCTION memcubed_lex_stats_fts()""",
    """CREATE TRIGGER cubes_lex_stats AFTER UPDATE OF namespace ON cubes
        FOR EACH ROW WHEN (OLD.namespace IS DISTINCT FROM NEW.namespace) EXECUTE FUNCTION memcubed_lex_stats_move()""",
    f"INSERT INTO lex_ns_stats (namespace, documents, tokens) {NAMESPACE_STATS_SQL}",
    f"INSERT INTO lex_ns_terms (namespace, lexeme, df) {TERM_STATS_SQL}",
]
"""PostgreSQL migration 14: the statistics tables, their triggers and the backfill."""
