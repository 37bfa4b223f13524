"""What decides which files are scenarios, and where the session keeps transcripts.

Kept apart from :mod:`pocketmesh_testing.scenarios` so that registering the plugin imports
nothing heavy: the A2A stack loads only when a scenario file is actually collected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

__all__ = ["TRANSCRIPTS", "is_scenario_file"]

TRANSCRIPTS = pytest.StashKey[dict[str, list[str]]]()
"""Transcript lines of every scenario played in the session, by node id."""


def is_scenario_file(path: Path, config: pytest.Config) -> bool:
    """True for ``*.yaml`` / ``*.yml`` under a scenario directory (not in cassettes or ``__*`` dirs)."""
    if path.suffix not in (".yaml", ".yml"):
        return False
    for entry in config.getini("pocketmesh_scenario_dirs") or ["scenarios"]:
        base = (config.rootpath / str(entry)).resolve()
        try:
            inner = path.resolve().relative_to(base)
        except ValueError:
            continue
        return not any(p == "cassettes" or p.startswith("__") for p in inner.parts[:-1])
    return False
