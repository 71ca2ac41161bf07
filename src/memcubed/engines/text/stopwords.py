"""English stopwords dropped from full-text queries (they match almost every memory).

The list lives with the vocabulary both indexes share (``backends.vocabulary``): an all-caps
stopword there is marked as an acronym, which needs the same list.
"""

from memcubed.backends.vocabulary import STOPWORDS

__all__ = ["STOPWORDS"]
