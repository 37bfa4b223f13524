"""The project's asyncio set-up, as far as the plugin is concerned: whether the user chose an
``asyncio_mode`` (then the plugin leaves their async tests alone), and pytest-asyncio's
"loop scope is unset" warning, quiet only where the plugin is the one running the async tests.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest

__all__ = ["LOOP_SCOPE_WARNING", "asyncio_mode_chosen", "quiet_loop_scope_warning", "user_set_ini"]


def user_set_ini(config: pytest.Config, name: str) -> bool:
    """Whether the ini file (or ``-o name=...``) sets ``name``, as opposed to its default applying."""
    # pytest offers no public "was it set" question: getini answers the default for an unset key.
    # pytest 9 keeps file values and -o overrides in _inicfg; pytest 8 in inicfg and _override_ini.
    values = getattr(config, "_inicfg", None)
    if values is None:
        values = getattr(config, "inicfg", {})
    if name in values:
        return True
    overrides = getattr(config, "_override_ini", None) or ()
    return any(str(o).partition("=")[0].strip() == name for o in overrides)


def asyncio_mode_chosen(config: pytest.Config) -> bool:
    """Whether the user chose an asyncio mode (ini, ``-o`` or ``--asyncio-mode``): theirs to keep."""
    try:
        option = config.getoption("asyncio_mode")
    except ValueError:  # pytest-asyncio is not installed: nothing to choose
        return False
    return option is not None or user_set_ini(config, "asyncio_mode")


LOOP_SCOPE_WARNING = r'The configuration option "asyncio_default_fixture_loop_scope" is unset'


def quiet_loop_scope_warning(config: pytest.Config, marks_async_tests: bool) -> Callable[[], None] | None:
    """Hide pytest-asyncio's "loop scope is unset" warning where the plugin runs the async tests.

    pytest-asyncio warns at configure time whenever the key is unset. Where the user configured
    no asyncio mode and the plugin marks their async tests, the plugin is their asyncio set-up and
    the warning only nags; async fixtures keep pytest-asyncio's behaviour for an unset key. The
    warning is left alone where the user chose a mode, set the key, or made warnings errors
    (``-W error``): there it may change an outcome. Returns the undo, or None if nothing was done.
    """
    try:
        if config.getini("asyncio_default_fixture_loop_scope") or not marks_async_tests:
            return None
    except ValueError:  # pytest-asyncio is not installed
        return None
    category: type[Warning] = pytest.PytestDeprecationWarning
    if _action_for(category, LOOP_SCOPE_WARNING, "pytest_asyncio.plugin") == "error":
        return None
    warnings.filterwarnings("ignore", message=LOOP_SCOPE_WARNING, category=category)
    entry = warnings.filters[0]

    def undo() -> None:
        if entry in warnings.filters:
            warnings.filters.remove(entry)

    return undo


def _action_for(category: type[Warning], text: str, module: str) -> str:
    """The action the active warning filters take on a warning (as ``warnings.warn`` decides)."""
    for action, message, kind, where, _line in warnings.filters:
        matched: Any = (message is None or message.match(text)) and issubclass(category, kind) and (
            where is None or where.match(module))
        if matched:
            return str(action)
    return str(warnings.defaultaction)
