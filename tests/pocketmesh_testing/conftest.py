"""Shared setup for the plugin's pytester tests."""

from __future__ import annotations

import pytest

# pytester's in-process runs restore sys.modules afterwards, so heavy libraries first imported
# inside a run are imported again by the next (about a second each for openai). Importing them
# here keeps them in the snapshot pytester restores to.
import hypothesis  # noqa: F401
import openai  # noqa: F401
import pocketmesh  # noqa: F401
import pocketmesh_testing.doubles.fixtures  # noqa: F401
import pocketmesh_testing.plugin  # noqa: F401
import pytest_asyncio  # noqa: F401
import syrupy  # noqa: F401
import vcr  # noqa: F401
import vcr.stubs.httpx_stubs  # noqa: F401


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester whose inner runs see neither the surrounding CI setting nor the xdist worker
    this test may run in (syrupy, for one, reports nothing from inside a worker)."""
    monkeypatch.delenv("CI", raising=False)
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester
