"""The embedder a store records: which vector space its embeddings live in.

A store records its embedder when it is created, as the ``embedder`` entry of its metadata: the spec that
builds it again (``make_embedder``), the dimension and the fingerprint of its weights or distillation, as
canonical JSON with a checksum over those fields. Every later open checks the embedder against it, one rule
for every backend:

- opened with no embedder named (neither an argument nor ``MEMCUBED_EMBEDDER``), a store opens with the one
  it records (``composition.build_kernel``), so changing the default embedder never touches existing stores;
- named explicitly, the embedder must be the recorded one (spec, dimension and fingerprint), else
  ``ConfigurationError``: vectors of two spaces are never mixed, and nothing is written;
- a record that fails its checksum or does not parse is ``IntegrityError``: the store is not opened with a
  guess.

Stores from before fingerprints recorded ``<name>|<dim>`` (or ``none``); they open as before and their record
gains the fingerprint on the first open with a matching embedder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from memcubed.backends.base import Embedder, StorageBackend
from memcubed.backends.embedders.fingerprint import text_fingerprint
from memcubed.errors import ConfigurationError, IntegrityError

__all__ = ["META_KEY", "EmbedderRecord", "check_embedder", "read_record"]

META_KEY = "embedder"
"""The store metadata key holding the record."""

_NONE = "none"
_FIELDS = ("spec", "dim", "fingerprint")


@dataclass(frozen=True)
class EmbedderRecord:
    """What a store knows of its embedder.

    Attributes:
        spec: the embedder's name, a spec ``make_embedder`` builds it from again (``none``: lexical only).
        dim: the vector dimension (0 for ``none``).
        fingerprint: of the weights or distillation (``backends.embedders.fingerprint``); empty in a record
            written before fingerprints, which only the spec and dimension are checked against.
    """

    spec: str
    dim: int
    fingerprint: str

    @classmethod
    def of(cls, embedder: Embedder | None) -> EmbedderRecord:
        """The record ``embedder`` would write (``none`` for a lexical-only store).

        Raises:
            BackendUnavailable: the embedder's model files cannot be read to fingerprint them.
        """
        if embedder is None:
            return cls(_NONE, 0, _NONE)
        # An embedder written before fingerprints (a caller's own class) is known by its name, as it was then.
        fingerprint = getattr(embedder, "fingerprint", None)
        if not isinstance(fingerprint, str) or not fingerprint:
            fingerprint = text_fingerprint("name", embedder.name)
        return cls(embedder.name, int(embedder.dim), fingerprint)

    @property
    def label(self) -> str:
        """``<spec>|<dim>`` (or ``none``), as errors and logs name it."""
        return _NONE if self.spec == _NONE else f"{self.spec}|{self.dim}"

    def encode(self) -> str:
        """The metadata value: sorted JSON of the fields and their checksum."""
        fields: dict[str, Any] = {"spec": self.spec, "dim": self.dim, "fingerprint": self.fingerprint}
        return json.dumps({**fields, "checksum": _checksum(fields)}, sort_keys=True)

    @classmethod
    def decode(cls, raw: str) -> EmbedderRecord:
        """Parse a metadata value (the JSON record, or a legacy ``<name>|<dim>`` / ``none``).

        Raises:
            IntegrityError: the value does not parse, lacks a field, or fails its checksum.
        """
        if raw == _NONE:
            return cls(_NONE, 0, "")
        if not raw.startswith("{"):
            name, sep, dim = raw.rpartition("|")
            if not sep or not name or not dim.isdigit() or int(dim) <= 0:
                raise _tampered(raw, "neither a JSON record nor <name>|<dim>")
            return cls(name, int(dim), "")
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise _tampered(raw, "not JSON") from exc
        if not isinstance(data, dict) or set(data) != {*_FIELDS, "checksum"}:
            raise _tampered(raw, f"fields must be exactly {sorted({*_FIELDS, 'checksum'})}")
        spec, dim, fingerprint = data["spec"], data["dim"], data["fingerprint"]
        if not (isinstance(spec, str) and spec and isinstance(fingerprint, str) and fingerprint
                and type(dim) is int and (dim > 0 or spec == _NONE)):
            raise _tampered(raw, "a field has the wrong type or an empty value")
        if data["checksum"] != _checksum({k: data[k] for k in _FIELDS}):
            raise _tampered(raw, "the checksum does not match the fields")
        return cls(spec, dim, fingerprint)


def read_record(store: StorageBackend) -> EmbedderRecord | None:
    """The record of ``store``, or None for a store not yet bootstrapped (a new one).

    Raises:
        IntegrityError: the record is damaged (see ``EmbedderRecord.decode``).
    """
    raw = store.get_meta(META_KEY)
    return None if raw is None else EmbedderRecord.decode(raw)


def check_embedder(store: StorageBackend, embedder: Embedder | None) -> EmbedderRecord | None:
    """Check ``embedder`` against ``store``'s record (call inside a write transaction); write the record
    when the store has none (creating its vector index) or an older one without a fingerprint.

    Returns:
        The record found before this call (None for a new store).

    Raises:
        ConfigurationError: the store records another embedder (spec, dimension or fingerprint).
        IntegrityError: the record is damaged.
    """
    recorded = read_record(store)
    wanted = EmbedderRecord.of(embedder)
    if recorded is None:
        store.set_meta(META_KEY, wanted.encode())
        if embedder is not None:
            store.configure_vectors(wanted.dim)
        return None
    same_space = (recorded.spec, recorded.dim) == (wanted.spec, wanted.dim) and (
        not recorded.fingerprint or recorded.fingerprint == wanted.fingerprint)
    if not same_space:
        details: dict[str, Any] = {"recorded": recorded.label, "requested": wanted.label}
        if recorded.label == wanted.label:
            details.update(recorded_fingerprint=recorded.fingerprint, requested_fingerprint=wanted.fingerprint)
            message = (f"this store was indexed with embedder {recorded.label!r} whose weights had another"
                       f" fingerprint; the model files changed since")
        else:
            message = (f"this store was indexed with embedder {recorded.label!r}; opened with {wanted.label!r}"
                       " (open it without naming an embedder to use its own)")
        raise ConfigurationError(message, **details)
    if not recorded.fingerprint:
        store.set_meta(META_KEY, wanted.encode())  # a record from before fingerprints gains one
    return recorded


def _checksum(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _tampered(raw: str, why: str) -> IntegrityError:
    return IntegrityError(f"the store's embedder record is damaged ({why}); refusing to guess its vector space",
                          key=META_KEY, value=raw[:200])
