"""The Store contract: every backend must pass this suite unchanged.

A new backend means a dialect, its connection code, and this package green. Each module covers
a part of :class:`durably.storage.base.Store`; ``conftest.py`` gives every test the ``store``
fixture, once per selected backend (DURABLY_TEST_BACKENDS), and ``helpers.py`` the records.
"""
