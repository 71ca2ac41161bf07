"""Entity aliases learnt from a memory's text: roles and names both ways, with the role's class."""

from __future__ import annotations

import pytest

from memcubed.backends.alias import canonical_role, learn_aliases


@pytest.mark.parametrize(("text", "pair"), [
    ("Melanie: my dog Max is the best", ("dog", "max")),
    ("We got a puppy named Oscar last week", ("puppy", "oscar")),
    ("Our daughter Ella started school", ("daughter", "ella")),
    ("I took my son, Leo, to the park", ("son", "leo")),
    ("my little cat Luna hid all day", ("cat", "luna")),
    ("Ella, my youngest, painted a bowl", ("youngest", "ella")),
    ("Her kids Mia and Sam love the beach", ("kid", "mia")),
])
def test_a_role_and_its_name_are_learnt_both_ways_with_the_class(text: str, pair: tuple[str, str]) -> None:
    found = learn_aliases(text)
    role, name = pair
    assert (role, name) in found and (name, role) in found
    klass = {"dog": "pet", "puppy": "pet", "cat": "pet", "daughter": "kid", "son": "kid", "youngest": "kid",
             "kid": "kid"}[role]
    assert (klass, name) in found and found == sorted(set(found))


@pytest.mark.parametrize("text", [
    "",
    "my dog is the best",  # no name
    "my dog And I went out",  # a capitalised function word is no name
    "my dog max",  # lower case: not written as a name
    "the dog Max",  # nobody's: could be any dog
    "my car Tesla",  # not a role we know
    "my son Son",  # a role word is no name
    "I was scared for my son, Thankfully he is fine",  # after a comma, only an apposition names
    "x" * 100_000,
    "my " * 10_000 + "dog",
])
def test_no_alias_without_a_named_role(text: str) -> None:
    assert learn_aliases(text) == []


def test_roles_are_canonical() -> None:
    assert canonical_role("Kids") == "kid" and canonical_role("children") == "child"
    assert canonical_role("dog") == "dog" and canonical_role("car") is None
