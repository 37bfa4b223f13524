"""The ``pocketmesh`` logger; ``POCKETMESH_LOG_LEVEL`` sets its level."""

from __future__ import annotations

import logging
import os

logger = logging.getLogger("pocketmesh")


def configure_from_env() -> None:
    """Apply ``POCKETMESH_LOG_LEVEL`` (a level name such as ``DEBUG`` or a number)."""
    level = os.environ.get("POCKETMESH_LOG_LEVEL")
    if not level:
        return
    value: int | str = int(level) if level.isdigit() else level.upper()
    try:
        logger.setLevel(value)
    except ValueError:
        logger.warning(
            "ignoring POCKETMESH_LOG_LEVEL=%r: not a logging level; use DEBUG, INFO, WARNING, "
            "ERROR or CRITICAL.",
            level,
        )
