"""The default control set: general knowledge a base model answers, which consolidation must not disturb."""

from __future__ import annotations

from memcubed.engines.lora.pairs import Example

__all__ = ["CONTROL", "REHEARSAL", "control_probes"]

CONTROL: tuple[tuple[str, str], ...] = (
    ("What is the capital of France?", "Paris"),
    ("What is the capital of Japan?", "Tokyo"),
    ("What is the capital of Russia?", "Moscow"),
    ("What is the capital of Germany?", "Berlin"),
    ("What is the capital of China?", "Beijing"),
    ("What is the capital of England?", "London"),
    ("What is the chemical symbol for gold?", "Au"),
    ("Which planet is known as the Red Planet?", "Mars"),
    ("What is the chemical symbol for water?", "H2O"),
    ("What gas do plants absorb from the air?", "carbon dioxide"),
    ("Who wrote Romeo and Juliet?", "Shakespeare"),
    ("What language is spoken in Brazil?", "Portuguese"),
    ("Who was the first president of the United States?", "George Washington"),
    ("What is the largest animal on Earth?", "whale"),
    ("What is the largest ocean on Earth?", "Pacific"),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci"),
    ("What is the capital of the United States?", "Washington"),
    ("What is the tallest mountain in the world?", "Everest"),
    ("Who developed the theory of relativity?", "Einstein"),
    ("What is the opposite of hot?", "cold"),
)
"""Question → answer span pairs, asked as a user turn of the chat template."""


def control_probes(pairs: tuple[tuple[str, str], ...] = CONTROL) -> list[Example]:
    """Return control probes for ``pairs`` (the default control set when omitted)."""
    return [Example("", "control", question, answer, chat=True) for question, answer in pairs]


REHEARSAL: tuple[str, ...] = (
    "Where was Albert Einstein born?",
    "Where was Marie Curie born?",
    "What is photosynthesis?",
    "Give me a tip for staying focused.",
    "What is the capital of Canada?",
    "Name a primary color.",
    "How do you make a cup of tea?",
    "What is a noun?",
    "Translate 'thank you' into French.",
    "Who was Isaac Newton?",
    "What does a doctor do?",
    "Write a short greeting for a friend.",
    "What is the weather like in summer?",
    "Why do we need sleep?",
    "What is your favourite hobby?",
    "How many legs does a spider have?",
    "What are some good plans for a summer holiday?",
    "What does a typical morning look like for a student?",
    "Where does the sun rise?",
    "What is a computer?",
    "How can I learn to paint?",
    "What is the main ingredient of bread?",
    "Who wrote the Odyssey?",
    "What is democracy?",
)
"""Prompts whose base-model answers are trained alongside the facts (rehearsal), so the adapter keeps the
model's general behaviour; none of them is in ``CONTROL``, which measures how well that works."""
