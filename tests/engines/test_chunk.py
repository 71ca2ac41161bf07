"""Windows of long memories: none for a text that fits, overlapping ones that reach the end, a bounded count."""

from __future__ import annotations

from memcubed.engines.text.chunk import MAX_CHUNKS, chunk_windows


def _words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


def test_a_text_that_fits_has_no_windows() -> None:
    assert chunk_windows(_words(150), 256) == []
    assert chunk_windows("", 256) == []
    assert chunk_windows(_words(5000), 0) == []  # an embedder without a window is never chunked


def test_windows_overlap_reach_the_end_and_keep_the_original_text() -> None:
    text = "alpha\tbeta\n\n" + _words(600) + "  omega"
    windows = chunk_windows(text, 256)
    assert len(windows) >= 3
    assert windows[-1].endswith("omega")
    assert all(w in text for w in windows)  # slices: spacing kept, nothing invented
    first, second = (set(w.split()) for w in windows[:2])
    assert first & second  # a fact cut at a boundary is whole in one of the two
    assert max(len(w.split()) for w in windows) <= 256


def test_a_huge_text_gets_at_most_max_chunks_spread_to_its_end() -> None:
    windows = chunk_windows(_words(200_000), 256)
    assert len(windows) == MAX_CHUNKS
    assert windows[-1].split()[-1] == "w199999"
