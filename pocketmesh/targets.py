"""``MODULE:ATTR`` targets, as the command line and the harness name flows, apps and backends."""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any


def split_target(spec: str, example: str) -> tuple[str, str]:
    """``(module, attr)`` of ``spec``; a ``ValueError`` showing ``example`` if it is not ``MODULE:ATTR``."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected MODULE:ATTR, got {spec!r}; e.g. {example}")
    return module_name, attr


def attribute_of(module: ModuleType, attr: str, spec: str, *, keys: bool = False) -> Any:
    """``module``'s attribute at the dotted path ``attr`` (``keys``: a step may also be a key
    of a mapping); an ``AttributeError`` naming the step that is missing and ``spec``."""
    value: Any = module
    for part in attr.split("."):
        if keys and isinstance(value, Mapping) and part in value:
            value = value[part]
        elif hasattr(value, part):
            value = getattr(value, part)
        else:
            kind = "neither an attribute nor a key" if keys and isinstance(value, Mapping) else "not an attribute"
            raise AttributeError(
                f"{module.__name__!r} has no attribute {attr!r}: {part!r} is {kind} of "
                f"{type(value).__name__} {getattr(value, '__name__', '')!s}".rstrip()
                + f"; check the name after the colon in {spec!r}"
            )
    return value
