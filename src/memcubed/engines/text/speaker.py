"""Speaker focus: a question about one named person ranks that person's own turns higher (pure, no I/O).

Conversation memories are stored as ``"<speaker>: <text>"`` turns. A question such as "What activities does
Melanie partake in?" is answered by what Melanie said, but her name is in half the turns of a two-person
conversation, so BM25 gives it almost no weight and the other speaker's replies ("Melanie, that's great!")
crowd the list. ``focus`` lifts the hits whose turn opens with that speaker's name by ``boost`` standard
deviations of the candidates' scores; it only reorders the hits it is given.

The same lift serves a request for advice ("Can you suggest a hotel for my trip?") and a question about the
asker's own life ("How many instruments do I own?"): each is answered by what the asker said of themselves
(their budget, what they bought), not by the long answers they were given, so the asker's own turns
(``ASKER_SPEAKERS`` or their principal's name, which ``remember`` writes as the speaker) are lifted
(``asker_boost``).

``without_speakers`` serves the dense query: a question naming a participant of the conversation ("What
instruments does Melanie play?") matches, by that name alone, every turn that opens with it or addresses her
("Melanie, that's great!"), so the name pulls the question's vector toward the wrong turns; it is dropped from the
text that is embedded (the lexical query keeps it, and the speaker stage uses it). A name no retrieved turn opens
with (a friend, a city, a film) is a topic, not a speaker, and stays.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Collection, Iterable, Sequence

from memcubed.schemas.ops import SearchHit

__all__ = ["ASKER_SPEAKERS", "focus", "speaker_of", "without_names", "without_speakers"]

ASKER_SPEAKERS = frozenset({"user"})  # the role a chat export or an imported log gives the person asking

_SPEAKER = re.compile(r"^\s*([^\W\d_][\w .'-]{0,39}?)\s*:")


def speaker_of(text: str) -> str | None:
    """The speaker a ``"<speaker>: <text>"`` turn opens with, lower-cased, or None."""
    found = _SPEAKER.match(text)
    return found.group(1).lower() if found else None


def focus(hits: Sequence[SearchHit], speaker: str | Collection[str], boost: float) -> list[SearchHit]:
    """``hits`` (best first) with the turns of ``speaker`` (one name or several; case-insensitive) raised by
    ``boost`` standard deviations of the scores; ties keep the given order (``boost`` 0 leaves the order as it
    is)."""
    if boost <= 0 or len(hits) < 2:
        return list(hits)
    sd = statistics.pstdev(h.score for h in hits) or 1.0
    wanted = {speaker.lower()} if isinstance(speaker, str) else {s.lower() for s in speaker}
    scored = [(h.score + (boost * sd if speaker_of(h.cube.text or "") in wanted else 0.0), -i, h)
              for i, h in enumerate(hits)]
    scored.sort(key=lambda item: (-item[0], -item[1]))
    return [h.model_copy(update={"score": score}) for score, _, h in scored]


def without_speakers(query: str, names: Sequence[str], texts: Iterable[str]) -> tuple[str, list[str]]:
    """``query`` without those of ``names`` (and their possessive ``'s``) that open one of ``texts`` as its
    speaker (case-insensitive), and those names; ``query`` itself when none does or nothing else would be left."""
    speakers = {speaker_of(text) for text in texts}
    found = [name for name in names if name.lower() in speakers]
    left = without_names(query, found)
    return (left, found) if left != query else (query, [])


def without_names(query: str, names: Sequence[str]) -> str:
    """``query`` without ``names`` (whole words, case-insensitive, with a possessive ``'s``), spaces squeezed;
    ``query`` itself when ``names`` is empty or nothing but them (and punctuation) would be left."""
    if not names:
        return query
    pattern = r"\b(?:" + "|".join(re.escape(name) for name in names) + r")\b(?:'s)?"
    left = " ".join(re.sub(pattern, " ", query, flags=re.IGNORECASE).split())
    return left if re.search(r"[^\W_]", left) else query
