"""Lifecycle signatures, checked when a node is created rather than at its first run.

The runtime calls each lifecycle method with a fixed list of positional arguments; a method
that cannot take them would otherwise fail only when a run reaches the node, with Python's bare
``TypeError``. Each node class is checked once, when its first instance is created.
"""

from __future__ import annotations

import inspect
from typing import Any

from .errors import SignatureError

EXPECTED: dict[str, tuple[str, ...]] = {
    "prepare": ("shared", "params"),
    "execute": ("prep_result", "shared", "params", "attempt"),
    "finalize": ("shared", "prep_result", "exec_result", "params"),
    "execute_fallback": ("prep_result", "error", "shared", "params", "attempt"),
    "execute_item": ("item", "shared", "params", "attempt"),
    "execute_item_fallback": ("item", "error", "shared", "params", "attempt"),
}
"""Each lifecycle method and the arguments the runtime passes it, in order (after ``self``)."""

_checked: set[type] = set()


def check_signatures(cls: type) -> None:
    """Raise :class:`SignatureError` if a lifecycle method of ``cls`` cannot take the runtime's
    arguments (checked once per class)."""
    if cls in _checked:
        return
    for name, arguments in EXPECTED.items():
        method = inspect.getattr_static(cls, name, None)
        if method is None:
            continue
        problem = _problem(cls, name, method, arguments)
        if problem is not None:
            raise SignatureError(problem)
    _checked.add(cls)


def _problem(cls: type, name: str, method: Any, arguments: tuple[str, ...]) -> str | None:
    static = isinstance(method, staticmethod)
    function = method.__func__ if isinstance(method, (staticmethod, classmethod)) else method
    if not callable(function):
        return f"{cls.__name__}.{name} is a {type(function).__name__}, not a method; define it as {_expected(name, arguments)}."
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return None  # a builtin or C callable: nothing to read, so nothing to check
    leading = () if static else (None,)
    try:
        signature.bind(*leading, *arguments)
    except TypeError as exc:
        return (
            f"{cls.__name__}.{name}{signature} cannot take the arguments the runtime passes "
            f"({exc}); define it as {_expected(name, arguments)} (the names are yours to choose)."
        )
    return None


def _expected(name: str, arguments: tuple[str, ...]) -> str:
    return f"{name}(self, {', '.join(arguments)})"
