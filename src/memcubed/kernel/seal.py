"""The audit chain's seal: a secret key and a signed head checkpoint, both kept outside the store.

Someone who can write the database can rewrite the audit table, recompute every hash and reset the
stored head. The seal takes that away: record hashes are HMAC-SHA256 under a key the database does
not hold, and after each committed write the newest record's ``(seq, hash)`` is written, signed, to a
head file beside the store, so a truncated or rewritten tail no longer verifies.

Where they live:
    * a SQLite store ``<db>``: ``<db>.auditkey`` (created 0600 when the store is new) and ``<db>.audithead``;
    * a PostgreSQL store: ``MEMCUBED_AUDIT_KEY`` (or ``audit_key_file``) and ``audit_head_file`` when set,
      else both under ``$XDG_STATE_HOME/memcubed/audit/`` (``~/.local/state``), named by the DSN without
      its password. Several servers sharing one database must share the key (set ``MEMCUBED_AUDIT_KEY``);
      each may keep its own head file (a checkpoint names one record, which later records never change).

A store created before the seal existed is keyed from its next record on: ``meta audit_keyed_from``
(also in the signed head) says where the keyed chain starts, and ``audit verify`` notes that the
records before it are chained without a key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from pathlib import Path

from memcubed.backends.base import StorageBackend
from memcubed.backends.privatefile import write_private
from memcubed.backends.selection import is_postgres_dsn
from memcubed.errors import ConfigurationError, IntegrityError
from memcubed.settings import Settings

__all__ = ["KEYED_FROM", "AuditSeal", "Checkpoint", "open_seal"]

KEYED_FROM = "audit_keyed_from"
"""Store meta: seq of the first record hashed with the key (1 for stores created keyed)."""

Checkpoint = tuple[int, str, int]
"""A signed head: ``(seq, hash, keyed_from)``."""


class AuditSeal:
    """The key that signs the audit chain and the file that checkpoints its head.

    Args:
        key: the HMAC key; None for an unkeyed chain (plain SHA-256, as stores before the seal had).
        head_path: where the signed head is written after each committed write; None for no checkpoint.
    """

    def __init__(self, key: bytes | None, head_path: Path | None = None) -> None:
        self.key = key
        self.head_path = head_path
        self._lock = threading.Lock()
        self._written = 0
        self._keyed_from: str | None = None  # set once per store, never changed: read once

    def digest(self, message: str, *, keyed: bool) -> str:
        """Return the hex HMAC-SHA256 of ``message`` (plain SHA-256 when not ``keyed`` or there is no key)."""
        if keyed and self.key is not None:
            return hmac.new(self.key, message.encode(), hashlib.sha256).hexdigest()
        return hashlib.sha256(message.encode()).hexdigest()

    def _signature(self, seq: int, record_hash: str, keyed_from: int) -> str:
        return self.digest(f"audit-head|{seq}|{record_hash}|{keyed_from}", keyed=True)

    def checkpoint(self, store: StorageBackend) -> None:
        """Write the store's committed head to the head file, signed (call after a write commits).

        Raises:
            StorageError / BackendUnavailable: the store cannot be read.
        """
        if self.head_path is None or self.key is None:
            return
        head = store.audit_head()
        keyed_from = self._keyed_from = self._keyed_from or store.get_meta(KEYED_FROM)
        if head is None or keyed_from is None:
            return
        with self._lock:
            if head[0] <= self._written:
                return
            body = {"seq": head[0], "hash": head[1], "keyed_from": int(keyed_from),
                    "signature": self._signature(head[0], head[1], int(keyed_from))}
            write_private(self.head_path, json.dumps(body, sort_keys=True).encode())
            self._written = head[0]

    def read_checkpoint(self) -> Checkpoint | None:
        """Return the signed head, or None when there is no head file.

        Raises:
            IntegrityError: the head file is unreadable or its signature does not match.
        """
        if self.head_path is None or not self.head_path.exists():
            return None
        try:
            body = json.loads(self.head_path.read_bytes())
            seq, record_hash, keyed_from = int(body["seq"]), str(body["hash"]), int(body["keyed_from"])
            signature = str(body["signature"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"the audit head file {self.head_path} is unreadable", path=str(self.head_path)) \
                from exc
        if not hmac.compare_digest(signature, self._signature(seq, record_hash, keyed_from)):
            raise IntegrityError(f"the audit head file {self.head_path} is not signed by this store's key",
                                 path=str(self.head_path))
        return seq, record_hash, keyed_from


def _state_paths(location: str) -> tuple[Path, Path]:
    """Default key and head files of a PostgreSQL store: per DSN (password left out) under the state dir."""
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    name = hashlib.sha256(re.sub(r"(://[^:/@]*):[^@]*@", r"\1@", location).encode()).hexdigest()[:24]
    folder = state / "memcubed" / "audit"
    return folder / f"{name}.key", folder / f"{name}.head"


def open_seal(store: StorageBackend, location: str, settings: Settings, *, create: bool = True,
              key: bytes | None = None) -> AuditSeal:
    """Find (or, for a store not keyed yet and ``create``, mint) the seal of the store at ``location``.

    Args:
        store: the opened store (its meta says whether its chain is keyed already).
        location: the store's file path or DSN (default key and head files derive from it).
        settings: ``audit_key``, ``audit_key_file`` and ``audit_head_file`` override the defaults.
        create: mint and save a key when the store's chain is not keyed yet (False: use none).
        key: adopt this key (``migrate`` gives the target its source's key) and save it where the
            target's key belongs, unless one is configured already.

    Raises:
        ConfigurationError: the store's chain is keyed but its key is missing, a configured key
            differs from the one to adopt, or the key file cannot be read or written.
    """
    try:
        return _open_seal(store, location, settings, create=create, key=key)
    except OSError as exc:
        raise ConfigurationError(f"cannot read or write the audit key or head file: {exc}", field="audit_key_file") \
            from exc


def _open_seal(store: StorageBackend, location: str, settings: Settings, *, create: bool,
               key: bytes | None) -> AuditSeal:
    key_path, head_path = ((Path(f"{location}.auditkey"), Path(f"{location}.audithead"))
                           if not is_postgres_dsn(location) else _state_paths(location))
    key_path = Path(settings.audit_key_file) if settings.audit_key_file else key_path
    head_path = Path(settings.audit_head_file) if settings.audit_head_file else head_path
    configured = settings.audit_key.get_secret_value().encode() if settings.audit_key else None
    if configured is None and key_path.exists():
        configured = key_path.read_bytes().strip()
    if key is not None:
        if configured is not None and configured != key:
            raise ConfigurationError(f"the target's audit key ({key_path}) differs from the source's; "
                                     "migrate needs the source's key", field="audit_key")
        if configured is None:
            key_path.parent.mkdir(parents=True, exist_ok=True)
            write_private(key_path, key)
        return AuditSeal(key, head_path)
    keyed = store.get_meta(KEYED_FROM) is not None
    if configured is None and keyed:
        raise ConfigurationError(
            f"this store's audit chain is keyed, but its key is missing: restore {key_path} or set "
            "MEMCUBED_AUDIT_KEY (without it the log cannot be verified or extended)", field="audit_key",
            path=str(key_path))
    if configured is None and create:
        configured = _mint(key_path)
    return AuditSeal(configured, head_path if configured is not None else None)


def _mint(path: Path) -> bytes:
    """Create a new key file (0600); if another process created it first, use that one."""
    key = secrets.token_hex(32).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.new")
    write_private(draft, key)
    try:
        os.link(draft, path)  # appears whole or not at all, and never replaces a key another process made
    except FileExistsError:
        return path.read_bytes().strip()
    finally:
        draft.unlink()
    return key
