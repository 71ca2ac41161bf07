"""Entity aliases learnt from a memory's text at index time (pure; both SQL stores write what it finds).

People name their pets, children and relatives once ("my dog Max", "our daughter Ella", "a puppy named
Oscar", "Ella, my youngest") and later only by name ("Max loved the beach"). A question asks by role ("What
does Melanie's dog like?", "What do her kids enjoy?"), and shares no word with those later turns. So each
memory's *aliases* are indexed with it: the pairs ``(role, name)`` and ``(name, role)``, plus the role's
class ("kid" for son, daughter, child…; "pet" for dog, cat…), all lower-case. A search adds the aliases of
its words (``alias_terms`` of the store, over the memories the searcher may read in that namespace only) as
an expansion: "dog" → "max". Nothing here reads a database.
"""

from __future__ import annotations

import re

__all__ = ["ROLE_CLASSES", "canonical_role", "learn_aliases"]

# Each role word -> its class (None: the role is its own class); plurals map to their singular.
ROLE_CLASSES: dict[str, str] = {
    **{w: "kid" for w in ("son", "daughter", "kid", "child", "boy", "girl", "baby", "toddler", "youngest",
                          "oldest", "eldest")},
    **{w: "pet" for w in ("dog", "cat", "puppy", "pup", "kitten", "pet", "horse", "bird", "parrot", "rabbit",
                          "bunny", "hamster", "turtle", "fish", "snake", "guinea")},
    **{w: "family" for w in ("husband", "wife", "partner", "mom", "mother", "dad", "father", "brother", "sister",
                             "grandma", "grandmother", "grandpa", "grandfather", "aunt", "uncle", "cousin",
                             "niece", "nephew", "fiance", "fiancee", "boyfriend", "girlfriend")},
    **{w: "friend" for w in ("friend", "colleague", "coworker", "roommate", "neighbor", "neighbour", "mentor",
                             "boss", "coach", "teacher", "therapist")},
}
_PLURALS = {"children": "child", "kids": "kid", "sons": "son", "daughters": "daughter", "dogs": "dog",
            "cats": "cat", "puppies": "puppy", "kittens": "kitten", "pets": "pet", "friends": "friend",
            "brothers": "brother", "sisters": "sister", "cousins": "cousin", "babies": "baby", "boys": "boy",
            "girls": "girl", "parents": "parent", "grandparents": "grandparent", "horses": "horse"}

_ROLE = "|".join(sorted({*ROLE_CLASSES, *_PLURALS}, key=len, reverse=True))
_NAME = r"([A-Z][a-z]{1,20})"
_OWNER = r"\b(?i:my|our|his|her|their)\s+(?:(?:little|new|old|baby|younger|older|best|pet|two|three|sweet)\s+)?"
_PATTERNS = (
    re.compile(_OWNER + rf"({_ROLE})\s+(?:named\s+|called\s+)?{_NAME}\b"),  # my dog Max
    # After a comma only an apposition ("my son, Leo, ..."): "my son, Thankfully he ..." names nobody.
    re.compile(_OWNER + rf"({_ROLE})\s*,\s*{_NAME}\s*(?:[,.!?;)]|$)"),
    re.compile(rf"\b({_ROLE})\s+(?:named|called)\s+{_NAME}\b"),  # a puppy named Oscar
)
_NAME_FIRST = re.compile(rf"\b{_NAME}\s*,\s*(?i:my|our)\s+(?:\w+\s+)?({_ROLE})\b")  # Ella, my youngest
# Capitalised words that follow a role but are no names ("my son And I", "my dog Is").
_NOT_NAMES = frozenset({"and", "but", "or", "the", "is", "was", "has", "had", "who", "when", "then", "so",
                        "it", "he", "she", "they", "we", "you", "i", "a", "an", "in", "on", "at", "to", "for"})


def canonical_role(word: str) -> str | None:
    """The singular role ``word`` names ("kids" -> "kid"), or None when it names no role."""
    word = word.lower()
    word = _PLURALS.get(word, word)
    return word if word in ROLE_CLASSES else None


def learn_aliases(text: str) -> list[tuple[str, str]]:
    """The alias pairs ``text`` establishes, both ways and with each role's class, sorted and without repeats:
    "my dog Max" -> ``[("dog", "max"), ("max", "dog"), ("max", "pet"), ("pet", "max")]``."""
    found: set[tuple[str, str]] = set()
    pairs = [(m.group(1), m.group(2)) for p in _PATTERNS for m in p.finditer(text)]
    pairs += [(m.group(2), m.group(1)) for m in _NAME_FIRST.finditer(text)]
    for role_word, name_word in pairs:
        role, name = canonical_role(role_word), name_word.lower()
        if role is None or name in _NOT_NAMES or canonical_role(name) is not None:
            continue
        for term in dict.fromkeys((role, ROLE_CLASSES[role])):
            found.update({(term, name), (name, term)})
    return sorted(found)
