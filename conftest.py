"""Project-wide test configuration: keep runs hermetic and files out of the work tree."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

import pocketmesh_testing.properties.profiles  # noqa: F401  (registers the dev and release profiles)

# Fast by default; `--hypothesis-profile=release` (as `pocketmesh gate` passes) overrides this.
settings.load_profile("dev")

# The A2A SDK creates many no-op tracing spans per request; off for speed in tests.
os.environ.setdefault("OTEL_INSTRUMENTATION_A2A_SDK_ENABLED", "false")


@pytest.fixture(autouse=True)
def _isolated_db_path(tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the default SQLite file, and where failing flow examples are kept, at a temporary
    directory for every test (planted-bug tests fail properties on purpose)."""
    monkeypatch.setenv("POCKETMESH_DB_PATH", str(tmp_path / "pocketmesh.sqlite"))  # type: ignore[operator]
    monkeypatch.setenv("POCKETMESH_FAILURES_DIR", str(tmp_path / "failures"))  # type: ignore[operator]
