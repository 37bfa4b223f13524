"""What the harness needs beyond the runtime: the ``testing`` extra (``pip install
'pocketmesh[testing]'``), checked without importing any of it."""

from __future__ import annotations

import importlib.util

__all__ = ["EXTRA", "REQUIREMENTS", "missing_requirements", "install_hint"]

EXTRA = "pocketmesh[testing]"

REQUIREMENTS = (
    ("pytest", "pytest"),
    ("pytest_asyncio", "pytest-asyncio"),
    ("hypothesis", "hypothesis"),
    ("vcr", "vcrpy"),
    ("respx", "respx"),
    ("syrupy", "syrupy"),
    ("coverage", "coverage"),
    ("openai", "openai"),
    ("yaml", "pyyaml"),
    ("jsonschema", "jsonschema"),
)
"""(import name, distribution name) of each package the harness imports."""


def missing_requirements() -> list[str]:
    """The distributions of the ``testing`` extra this environment lacks (empty: all there)."""
    return [dist for module, dist in REQUIREMENTS if importlib.util.find_spec(module) is None]


def install_hint(what: str) -> str:
    """A sentence saying ``what`` needs the extra, which packages are missing, and the command."""
    missing = missing_requirements()
    return (
        f"{what} is part of pocketmesh's test harness, which this environment lacks "
        f"(missing: {', '.join(missing) or 'nothing'}); install it with: pip install '{EXTRA}'"
    )
