"""The conformance suite every store backend must pass, shipped inside the package (fsspec's habit).

Each module here holds plain pytest tests of one concern (``acl``, ``audit``, ``search``, ``events``,
``activation``, ``chat``, ``derivation`` …) written against the fixtures of
:mod:`memcubed.testing.conformance.fixtures`: ``mc``, ``open_mc``, ``location``, ``raw_db``, ``lm``, and
``backend``, which names the store. A backend joins with one line per module::

    # conftest.py
    from memcubed.testing.conformance.fixtures import *  # then override the ``backend`` fixture

    # test_acl.py
    from memcubed.testing.conformance.acl import *

Tests never ask which backend they run on; differences go through ``RawDb``'s capabilities.
"""
