"""Loading a scenario's agent (``module:attr`` of a dict of flows), and saying briefly why not.

An agent module that fails to import is reported as one short error: the scenario file and the
line of its ``agent:``, the exception, and the frames of the project's own code that raised it
(the import machinery and this package left out), never a page of traceback.
"""

from __future__ import annotations

import importlib
import linecache
import os
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pocketmesh import BaseNode
from pocketmesh_testing.conversations.format import ScenarioFormatError

__all__ = ["AgentLoadError", "describe_import_failure", "load_agent", "load_flows"]

_MAX_FRAMES = 8
_HIDDEN = ("importlib", "<frozen ", os.sep + "pocketmesh_testing" + os.sep, os.sep + "_pytest" + os.sep,
           os.sep + "pluggy" + os.sep)


class AgentLoadError(ScenarioFormatError):
    """A scenario's agent could not be loaded: its module fails to import, or the name is wrong."""


def _shown(filename: str) -> bool:
    return not any(part in filename for part in _HIDDEN)


def _relative(filename: str) -> str:
    try:
        return os.path.relpath(filename)
    except ValueError:
        return filename


def describe_import_failure(error: BaseException) -> list[str]:
    """The exception in one line, then ``file:line: code`` for each frame of the project's code."""
    lines = [f"{type(error).__name__}: {error}".rstrip()]
    if isinstance(error, SyntaxError) and error.filename:
        lines.append(f"  {_relative(error.filename)}:{error.lineno}: {(error.text or '').strip()}")
        return lines
    frames = [f for f in traceback.extract_tb(error.__traceback__) if _shown(f.filename)]
    for frame in frames[-_MAX_FRAMES:]:
        code = (frame.line or linecache.getline(frame.filename, frame.lineno or 0)).strip()
        lines.append(f"  {_relative(frame.filename)}:{frame.lineno}: {code}")
    cause = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    if cause is not None and len(lines) < 2 * _MAX_FRAMES:
        lines.append(f"  caused by {type(cause).__name__}: {cause}")
    return lines


def load_flows(spec: str, root: Path | None = None) -> Mapping[str, BaseNode]:
    """Import ``module:attr`` and check it is a dict of flows."""
    module_name, _, attr = spec.partition(":")
    if root is not None and str(root) not in sys.path:
        # Scenarios name the project's own modules, as `pocketmesh serve` does from its cwd.
        sys.path.insert(0, str(root))
    module = importlib.import_module(module_name)
    value: Any = module
    for name in attr.split("."):
        if not hasattr(value, name):
            raise AttributeError(f"module {module_name!r} has no attribute {attr!r} (agent {spec!r}).")
        value = getattr(value, name)
    if not isinstance(value, Mapping) or not value or not all(isinstance(f, BaseNode) for f in value.values()):
        raise TypeError(f"agent {spec!r} is a {type(value).__name__}, not a dict of skill id -> Flow; e.g. flows = {{'greet': Flow(Greet())}}.")
    return value


def load_agent(spec: str, root: Path | None, scenario_file: Path, line: int | None) -> Mapping[str, BaseNode]:
    """:func:`load_flows`, with any failure turned into one :class:`AgentLoadError`."""
    try:
        return load_flows(spec, root)
    except (AttributeError, TypeError) as error:
        raise AgentLoadError(scenario_file, line, "agent", str(error)) from None
    except Exception as error:  # anything the module raises while importing
        detail = "\n".join(describe_import_failure(error))
        raise AgentLoadError(scenario_file, line, "agent", f"cannot import the agent {spec!r}: {detail}") from None
