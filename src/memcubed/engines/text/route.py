"""The per-query router: which retrieval stages a question needs, read from the question alone (pure, no I/O).

Expansion stages help the questions they were built for and cost the others (NOTES.md, ``fusion``): a
sub-query per person ranks a two-person question fairly but splits a one-person one into noise; feedback words
from the first hits reach a second piece of evidence but drift a question that one turn answers. So instead
of turning a stage on for every query, ``route`` picks stages from cues in the question, deterministically:

- ``split``: it names two or more people ("What do Melanie and Caroline both like?");
- ``hop``: it asks for several things or for something over time ("What books has Melanie read?",
  "How many instruments do I own?", "Which … ever"): the names and words of the first hits seed a second
  query (two-hop chaining);
- ``session``: it counts or sums ("How many …", "in total") or compares events in time ("Which did I do first,
  the gala or the bake sale?", "the order of the three events", "How long before …"): hits are spread over
  sessions, since each counted item or compared event tends to come from its own conversation;
- ``speaker``: it names exactly one person: that person's own turns rank higher (``speaker.py``);
- ``asker``: it asks for advice ("Can you suggest …", "Any tips …?") or about the asker's own life, in the
  first person ("How many instruments do I own?", "Where did I get my guitar serviced?"), and does not ask what
  the other party said ("Can you remind me what you told me …"): the asker's own turns, where they said what
  they like, have and did, rank higher than the long answers given to them (``speaker.py``);
- ``alias``: always offered; the kernel fuses it only when the namespace knows aliases of the query's words
  (a pet's or child's name: ``backends/alias.py``).

Time is not routed here: the chronology stage detects the dates and "when" questions itself
(``engines/text/chronology.py``, ``when.py``), and the kernel adds its line to the explanation.
Each chosen stage comes with a one-line reason, which the search result's ``explanation`` carries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from memcubed.engines.text.expand import query_names

__all__ = ["STAGES", "Route", "route"]

STAGES = ("split", "speaker", "asker", "hop", "session", "alias")

# "How many …", "what … has X ever", "list …", "all the …", "both": answers gathered from several memories.
_AGGREGATE = re.compile(
    r"\bhow many\b|\bhow much\b|\bin total\b|\btotal\b|\bever\b|\ball (?:the|of)\b|\bboth\b|\blist\b"
    r"|\bwhat (?:kinds?|types?|sorts?) of\b|\bwhich \w+s\b|\bso far\b|\bdifferent\b|\bvarious\b",
    re.IGNORECASE)
# "How many …", "in total": a count or a sum gathers one piece from each of several conversations.
_COUNTING = re.compile(r"\bhow many\b|\bhow much\b|\bin total\b|\btotal\b|\bnumber of\b|\bhow often\b",
                       re.IGNORECASE)
# "Which did I do first, X or Y?", "the order of …", "How long before …": two or more events set side by side in
# time, each usually told in a conversation of its own.
_COMPARING = re.compile(
    r"\b(?:first|earlier|later|sooner|before|after)\b[^?]{0,120}\bor\b"
    r"|\bor\b[^?]{0,120}\b(?:first|earlier|later|sooner)\b"
    r"|\border (?:of|in which)\b|\bhow (?:long|many (?:days|weeks|months|years))\b[^?]{0,120}\b(?:before|after|since"
    r"|between|when)\b",
    re.IGNORECASE)
# "Can you suggest …", "Any tips …?", "What should I serve …", "Do you think …": a request for advice, answered
# from what the asker has said about themselves.
_ADVICE = re.compile(
    r"\b(?:can|could|would|will) you\b[^?]{0,120}\b(?:recommend|suggest|advise|help me (?:choose|decide|pick|find))"
    r"|\bany (?:tips|advice|suggestions?|ideas|recommendations?|thoughts)\b|\bwhat should i\b"
    r"|\bdo you (?:think|have any (?:tips|advice|suggestions?|ideas|recommendations?))\b"
    r"|\b(?:give|need|want|looking for) (?:me )?(?:some )?(?:tips|advice|suggestions|ideas|recommendations)\b",
    re.IGNORECASE)
# "I", "my": the question is about the asker's own life, told in the asker's own turns ...
_FIRST_PERSON = re.compile(r"\b(?:i|my|me|mine|myself)\b", re.IGNORECASE)
# ... unless it asks what the other party said: "you told me", "remind me", "our previous conversation", "I'm trying
# to recall what …", "do you remember …".
_RECALLS_REPLY = re.compile(
    r"\byou (?:told|said|mentioned|suggested|recommended|gave|made|wrote|listed|provided|shared)\b"
    r"|\bremind me\b|\bour (?:previous|last|earlier) (?:chat|conversation|discussion|game)\b"
    r"|\btrying to recall\b|\bdo you (?:remember|recall)\b",
    re.IGNORECASE)
# "What books has Melanie read?", "What activities does Melanie partake in?", "Where has Melanie camped?":
# a plural object or a perfect ("has … <verb>ed") asks for everything that happened, not one turn.
_PLURAL_ASK = re.compile(
    r"^\W*(?:what|which|where|who)\s+(?:\w+\s+){0,2}?(?:\w{3,}(?<!ss)(?<!us)(?<!is)s)\s+(?:has|have|does|do|did|are"
    r"|were)\b|^\W*(?:what|where|who)\s+(?:has|have)\b",
    re.IGNORECASE)


@dataclass(frozen=True)
class Route:
    """The stages chosen for one query, each with the reason it was chosen (``stages`` in ``STAGES`` order)."""

    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def speaker(self) -> str | None:
        """The one person the question asks about, when the ``speaker`` stage was chosen."""
        reason = self.reasons.get("speaker")
        return reason.split(":", 1)[0].removeprefix("asks about ") if reason else None

    @property
    def stages(self) -> tuple[str, ...]:
        """The chosen stage names, in ``STAGES`` order."""
        return tuple(s for s in STAGES if s in self.reasons)

    def explanation(self) -> list[str]:
        """One line per chosen stage: ``"<stage>: <reason>"``."""
        return [f"{s}: {self.reasons[s]}" for s in self.stages]


def route(query: str) -> Route:
    """The stages ``query`` needs (see the module docstring); the same query always gets the same route."""
    reasons: dict[str, str] = {}
    names = query_names(query)
    if len(names) > 1:
        reasons["split"] = "names " + ", ".join(names)
    elif names:
        reasons["speaker"] = f"asks about {names[0]}: their own turns first"
    aggregate = _AGGREGATE.search(query) or _PLURAL_ASK.search(query)
    if aggregate:
        cue = " ".join(aggregate.group(0).split())
        reasons["hop"] = f"asks for several pieces of evidence ({cue!r})"
    if not _RECALLS_REPLY.search(query):
        if advice := _ADVICE.search(query):
            reasons["asker"] = f"asks for advice ({advice.group(0).lower()!r}): the asker's own turns first"
        elif own := _FIRST_PERSON.search(query):
            reasons["asker"] = f"asks about themselves ({own.group(0).lower()!r}): the asker's own turns first"
    if counting := _COUNTING.search(query):
        cue = " ".join(counting.group(0).split())
        reasons["session"] = f"counts or sums over several sessions ({cue!r}): hits spread over them"
    elif comparing := _COMPARING.search(query):
        cue = " ".join(comparing.group(0).split()[:6])
        reasons["session"] = f"compares events in time ({cue!r}): hits spread over sessions"
    reasons["alias"] = "the namespace's aliases of the query's words"
    return Route(reasons)
