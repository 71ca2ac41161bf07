"""Activation memory: compile texts into KV segments, store them as a prefix tree, inject them, generate.

The exact path puts cubes in canonical order and computes each cube's KV on top of the cubes
before it, so an injected prefix gives the same logits as the texts read in the prompt. The
approximate path joins independently computed per-cube caches: cheaper to combine, but later
cubes never attended to earlier ones, so its logits differ (the tests measure by how much).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from memcubed.backends.base import BlobStore
from memcubed.backends.models.base import Generation, KVLanguageModel
from memcubed.engines.kvcache.config import KVCacheConfig
from memcubed.engines.kvcache.prefix import CubeText, Link, SegmentIndex, chain_keys, ordered, segment_key
from memcubed.engines.kvcache.serialize import KVSegment, SegmentMeta, dump_segment, load_segment
from memcubed.errors import IntegrityError, ValidationError

__all__ = ["BuildReport", "KVCacheEngine", "KVPrefix", "Mode"]

Mode = Literal["exact", "approximate"]


@dataclass
class KVPrefix:
    """A ready-to-inject cache: the concatenated segments with their token ids.

    Attributes:
        token_ids: every token the cache covers, in order.
        layers: per-layer ``(keys, values)`` in the model's dtype, ``(1, kv_heads, tokens, head_dim)``.
        segments: metadata of the segments it was assembled from.
        exact: False when assembled from independently computed segments (approximate mode).
    """

    token_ids: list[int]
    layers: list[tuple[Any, Any]]
    segments: list[SegmentMeta] = field(default_factory=list)
    exact: bool = True

    @property
    def token_count(self) -> int:
        """Tokens covered by the cache."""
        return len(self.token_ids)


@dataclass(frozen=True)
class BuildReport:
    """What ``KVCacheEngine.build`` did.

    Attributes:
        keys: segment keys, in prefix order.
        digests: blob digests of those segments.
        reused: segments loaded from the blob store.
        computed: segments computed by running the model (and stored).
        quarantined: digests of stored segments that failed their hash check: the blob store moved
            them aside and they were computed again instead (never injected).
    """

    keys: list[str]
    digests: list[str]
    reused: int
    computed: int
    quarantined: list[str] = field(default_factory=list)


class KVCacheEngine:
    """Compiles, stores, loads and injects KV-caches for one open model.

    Args:
        lm: a model with an exposed cache (``LocalTransformersLM``).
        config: segment rendering and storage settings.
    """

    def __init__(self, lm: KVLanguageModel, config: KVCacheConfig | None = None) -> None:
        self.lm = lm
        self.config = config or KVCacheConfig()

    # -- compile ----------------------------------------------------------
    def segment_ids(self, text: str) -> list[int]:
        """Return the token ids a cube's text occupies in a prefix (text plus separator, tokenised alone).

        Raises:
            ValidationError: the text is longer than ``config.max_segment_tokens``.
        """
        ids = self.lm.encode(text + self.config.separator)
        if len(ids) > self.config.max_segment_tokens:
            raise ValidationError(f"text of {len(ids)} tokens exceeds max_segment_tokens "
                                  f"{self.config.max_segment_tokens}", field="max_segment_tokens")
        return ids

    def compile(self, texts: Sequence[str | CubeText], *, after: KVPrefix | None = None,
                progress: Callable[[int, int], None] | None = None) -> list[KVSegment]:
        """Run the model over ``texts`` in the given order, each on top of the ones before (and ``after``).

        Each segment is computed on its predecessors as they will be stored (rounded to the storage
        dtype), so a segment does not depend on whether its prefix was just computed or loaded.

        Args:
            texts: plain strings (anonymous cubes) or exact cube versions.
            after: an exact prefix the texts continue.
            progress: called with (texts done, texts in all) after each text.

        Returns:
            One segment per text, in order, keyed in the prefix tree.

        Raises:
            ValidationError: a text is too long, or ``after`` is an approximate prefix.
        """
        if after is not None and not after.exact:
            raise ValidationError("cannot compile on top of an approximate prefix", field="after")
        cubes = [CubeText("", 0, t) if isinstance(t, str) else t for t in texts]
        chain: list[Link] = [(m.cube_id, m.text_sha256) for m in after.segments] if after else []
        parent = after.segments[-1].key if after and after.segments else ""
        start = after.token_count if after else 0
        layers = list(after.layers) if after else []
        fmt = self.config.format_id()
        segments: list[KVSegment] = []
        for cube in cubes:
            ids = self.segment_ids(cube.rendered)
            _, cache = self.lm.forward(ids, cache=self.lm.new_cache(layers) if layers else None)
            full = self.lm.cache_layers(cache)
            own = [(self._as_stored(k[:, :, start:]), self._as_stored(v[:, :, start:])) for k, v in full]
            chain.append(cube.link)
            key = segment_key(self.lm.fingerprint, chain, fmt=fmt)
            meta = SegmentMeta(key=key, parent=parent, fingerprint=self.lm.fingerprint, start=start,
                               token_count=len(ids), dtype=self.config.storage_dtype, cube_id=cube.id,
                               cube_version=cube.version, text_sha256=cube.link[1])
            segments.append(KVSegment(meta=meta, token_ids=ids, layers=own))
            layers = own if not layers else [(_cat(pk, k), _cat(pv, v))
                                             for (pk, pv), (k, v) in zip(layers, own, strict=True)]
            parent, start = key, start + len(ids)
            if progress is not None:
                progress(len(segments), len(cubes))
        return segments

    def _as_stored(self, tensor: Any) -> Any:
        """Round a tensor through the storage dtype, back in the model's dtype."""
        import torch

        return tensor.to(getattr(torch, self.config.storage_dtype)).to(self.lm.dtype).contiguous()

    # -- bytes ------------------------------------------------------------
    def dumps(self, segment: KVSegment) -> bytes:
        """Return a segment's safetensors bytes (store them with ``BlobStore.put``)."""
        return dump_segment(segment)

    def loads(self, data: bytes) -> KVSegment:
        """Parse segment bytes made by this engine's model.

        Raises:
            ConfigurationError: the segment belongs to another model.
            IntegrityError: the bytes are malformed or inconsistent.
        """
        return load_segment(data, fingerprint=self.lm.fingerprint, dtype=self.lm.dtype)

    def load(self, digests: Sequence[str], blobs: BlobStore) -> KVPrefix:
        """Fetch segments by digest (hash-checked by the store) and assemble them into one prefix.

        Raises:
            NotFound: a blob is missing.
            IntegrityError: a blob is corrupt, or the segments do not form a chain.
            ConfigurationError: a segment belongs to another model.
        """
        return self.assemble([self.loads(blobs.get(digest)) for digest in digests])

    @staticmethod
    def assemble(segments: Sequence[KVSegment], *, exact: bool = True) -> KVPrefix:
        """Concatenate segments into one prefix; in exact mode each must continue the one before.

        Raises:
            IntegrityError: (exact mode) a segment's parent key or start position does not follow on.
        """
        if not segments:
            return KVPrefix(token_ids=[], layers=[], segments=[], exact=exact)
        parent, start = "", 0
        for segment in segments:
            if exact and (segment.meta.parent != parent or segment.meta.start != start):
                raise IntegrityError(f"KV segment {segment.meta.key} does not continue the segments before it",
                                     key=segment.meta.key, parent=segment.meta.parent, expected_parent=parent)
            parent, start = segment.meta.key, start + segment.meta.token_count
        import torch

        layers = [(torch.cat([s.layers[i][0] for s in segments], dim=2),
                   torch.cat([s.layers[i][1] for s in segments], dim=2)) for i in range(len(segments[0].layers))]
        ids = [token for s in segments for token in s.token_ids]
        return KVPrefix(token_ids=ids, layers=layers, segments=[s.meta for s in segments], exact=exact)

    # -- prefix tree ------------------------------------------------------
    def build(self, cubes: Sequence[CubeText], *, blobs: BlobStore, index: SegmentIndex,
              mode: Mode = "exact", progress: Callable[[int, int], None] | None = None,
              persist: bool = True, canonical: bool = True) -> tuple[KVPrefix, BuildReport]:
        """Return the prefix for a set of cubes, reusing stored segments and storing new ones.

        Exact mode orders the cubes canonically (id, then version) and walks the prefix tree: the
        longest stored run of leading segments is loaded, the rest is computed on top of it and
        stored. Approximate mode uses each cube's standalone segment (the tree's first level) and
        joins them without recomputation. ``progress`` gets (cubes done, cubes in all), reused ones included.
        With ``persist=False`` (exact mode) computed segments are used but not stored: the report's
        digests then cover only the reused ones. With ``canonical=False`` (exact mode) the cubes stay in
        the caller's order (a working set, then the extras of one question). A stored segment whose blob
        fails its hash check is never injected: the blob store quarantines it and it is computed again
        (``report.quarantined``).

        Raises:
            IntegrityError: a stored segment is not the one its key names, or does not parse (never injected).
            ConfigurationError: a stored segment belongs to another model.
            ValidationError: one cube version is given with two texts.
        """
        chain = ordered(cubes) if canonical or mode == "approximate" else _distinct(cubes)
        fmt = self.config.format_id()
        if mode == "approximate":
            return self._build_approximate(chain, blobs=blobs, index=index, fmt=fmt, progress=progress)
        keys = chain_keys(self.lm.fingerprint, [cube.link for cube in chain], fmt=fmt)
        loaded: list[KVSegment] = []
        digests: list[str] = []
        quarantined: list[str] = []
        for key in keys:
            digest = index.get(key)
            data = self._stored(digest, blobs, quarantined)
            if digest is None or data is None:
                break
            loaded.append(self._checked(data, key))
            digests.append(digest)
        prefix = self.assemble(loaded)
        done = len(loaded)
        if progress is not None:
            progress(done, len(chain))

        def advance(computed: int, _: int) -> None:
            if progress is not None:
                progress(done + computed, len(chain))

        fresh = self.compile(chain[done:], after=prefix, progress=advance) if done < len(chain) else []
        for segment in fresh if persist else []:
            digest = blobs.put(self.dumps(segment))
            index.put(segment.meta.key, digest)
            digests.append(digest)
        report = BuildReport(keys=keys, digests=digests, reused=len(loaded), computed=len(fresh),
                             quarantined=quarantined)
        return self.assemble([*loaded, *fresh]), report

    @staticmethod
    def _stored(digest: str | None, blobs: BlobStore, quarantined: list[str]) -> bytes | None:
        """The bytes of a stored segment, or None when missing or corrupt (then quarantined by the store)."""
        if digest is None or not blobs.exists(digest):
            return None
        try:
            return blobs.get(digest)
        except IntegrityError:
            quarantined.append(digest)
            return None

    def _build_approximate(self, chain: list[CubeText], *, blobs: BlobStore, index: SegmentIndex,
                           fmt: str, progress: Callable[[int, int], None] | None) -> tuple[KVPrefix, BuildReport]:
        segments: list[KVSegment] = []
        keys: list[str] = []
        digests: list[str] = []
        reused = 0
        quarantined: list[str] = []
        for cube in chain:
            key = segment_key(self.lm.fingerprint, [cube.link], fmt=fmt)
            digest = index.get(key)
            data = self._stored(digest, blobs, quarantined)
            if digest is not None and data is not None:
                segment = self._checked(data, key)
                reused += 1
            else:
                segment = self.compile([cube])[0]
                digest = blobs.put(self.dumps(segment))
                index.put(key, digest)
            segments.append(segment)
            keys.append(key)
            digests.append(digest)
            if progress is not None:
                progress(len(segments), len(chain))
        report = BuildReport(keys=keys, digests=digests, reused=reused, computed=len(chain) - reused,
                             quarantined=quarantined)
        return self.assemble(segments, exact=False), report

    def _checked(self, data: bytes, key: str) -> KVSegment:
        segment = self.loads(data)
        if segment.meta.key != key:
            raise IntegrityError(f"blob indexed as segment {key} holds segment {segment.meta.key}", key=key)
        return segment

    # -- inject -----------------------------------------------------------
    def query_ids(self, prefix: KVPrefix | None, query: str) -> list[int]:
        """Return the full token ids (prefix, then the query tokenised on its own) a joint pass would read."""
        return [*(prefix.token_ids if prefix else []), *self.lm.encode(query)]

    def next_token_logits(self, query: str, prefix: KVPrefix | None = None) -> Any:
        """Return the logits of the token after ``query``, with ``prefix`` injected (a copy; it stays reusable)."""
        cache = self.lm.new_cache(prefix.layers) if prefix and prefix.layers else None
        logits, _ = self.lm.forward(self.lm.encode(query), cache=cache)
        return logits

    def generate(self, query: str | Sequence[int], prefix: KVPrefix | None = None, *,
                 max_new_tokens: int = 64) -> Generation:
        """Continue ``query`` (text, or token ids) greedily after the injected ``prefix`` (copied, so it
        stays reusable).

        Time to first token counts from this call: copying the cache, prefilling the query and
        choosing the first token.
        """
        start = time.perf_counter()
        cache = self.lm.new_cache(prefix.layers) if prefix and prefix.layers else None
        copy_s = time.perf_counter() - start
        ids = self.lm.encode(query) if isinstance(query, str) else list(query)
        gen = self.lm.greedy(ids, cache=cache, max_new_tokens=max_new_tokens)
        return dataclasses.replace(gen, ttft_s=gen.ttft_s + copy_s, total_s=gen.total_s + copy_s)


def _distinct(cubes: Sequence[CubeText]) -> list[CubeText]:
    """``cubes`` in the given order, repeats dropped; one cube version given with two texts is refused."""
    ordered(cubes)  # raises ValidationError on a conflicting repeat
    seen: set[tuple[str, int]] = set()
    chain: list[CubeText] = []
    for cube in cubes:
        if (cube.id, cube.version) not in seen:
            seen.add((cube.id, cube.version))
            chain.append(cube)
    return chain


def _cat(a: Any, b: Any) -> Any:
    import torch

    return torch.cat([a, b], dim=2)
