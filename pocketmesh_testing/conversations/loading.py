"""Loading a scenario's agent (``module:attr`` of a dict of flows), and saying briefly why not.

An agent is imported the way ``pocketmesh serve`` imports it from its working directory: with
the project root (pytest's rootdir) at the front of ``sys.path``. Unlike the server, a test
session keeps no lasting trace of that: the root is on ``sys.path`` only while an agent is
imported and while its scenarios play (:func:`project_imports`), and the modules only the root
made importable (the agent module, the siblings it imports) are out of ``sys.modules`` in
between, so test modules import exactly what they would without any scenario collected, in
any order. An agent that imports a sibling lazily (inside a function) finds it while its
scenarios play, as the same module its first import loaded.

An agent module that fails to import is reported as one short error: the scenario file and the
line of its ``agent:``, the exception, and the frames of the project's own code that raised it
(the import machinery, the standard library and this package left out), never a page of
traceback.
"""

from __future__ import annotations

import contextlib
import importlib
import linecache
import os
import sys
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from pocketmesh import BaseNode
from pocketmesh.targets import attribute_of, split_target
from pocketmesh_testing.conversations.format import ScenarioFormatError

__all__ = ["AgentLoadError", "describe_import_failure", "forget_project_imports", "load_agent", "load_flows",
           "project_imports"]

_MAX_FRAMES = 8
_HIDDEN = ("importlib", "<frozen ", os.sep + "pocketmesh_testing" + os.sep, os.sep + "_pytest" + os.sep,
           os.sep + "pluggy" + os.sep)


class AgentLoadError(ScenarioFormatError):
    """A scenario's agent could not be loaded: its module fails to import, or the name is wrong."""


_STDLIB = os.path.dirname(os.__file__) + os.sep
_INSTALLED = {"site-packages", "dist-packages"}


def _shown(filename: str) -> bool:
    """A frame of the project's code: not the import machinery, this harness, or the standard library."""
    if any(part in filename for part in _HIDDEN):
        return False
    if filename.startswith(_STDLIB):
        # Installed packages (a non-editable install of the project among them) may sit under it.
        return not _INSTALLED.isdisjoint(Path(filename[len(_STDLIB):]).parts)
    return True


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


class _RootScope:
    """One project root: on ``sys.path`` while active, its root-only modules kept aside between."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.depth = 0
        self.added = False
        self.aside: dict[str, ModuleType] = {}
        self._before: set[str] = set()
        self._restored: dict[str, ModuleType] = {}

    def __enter__(self) -> None:
        self.depth += 1
        if self.depth > 1:
            return
        # Already on the path (ini pythonpath, a rootdir conftest): the project imports from it anyway.
        self.added = self.root not in sys.path
        if not self.added:
            return
        sys.path.insert(0, self.root)
        self._before = set(sys.modules)
        self._restored = {name: module for name, module in self.aside.items() if name not in sys.modules}
        sys.modules.update(self._restored)

    def __exit__(self, *exc: object) -> None:
        self.depth -= 1
        if self.depth or not self.added:
            return
        with contextlib.suppress(ValueError):
            sys.path.remove(self.root)
        for name, module in list(sys.modules.items()):
            restored = self._restored.get(name) is module
            if restored or (name not in self._before and self._only_from_root(name, module)):
                self.aside[name] = module
                del sys.modules[name]
        self._restored = {}

    def _only_from_root(self, name: str, module: Any) -> bool:
        """A module found through the root entry itself: ``<root>/<top>.py`` or ``<root>/<top>/...``."""
        filename = getattr(module, "__file__", None)
        if not filename:
            return False
        try:
            first = Path(filename).resolve().relative_to(self.root).parts[0]
        except ValueError:
            return False
        top = name.partition(".")[0]
        return first in (top, f"{top}.py") or first.startswith(f"{top}.")


_scopes: dict[str, _RootScope] = {}


@contextlib.contextmanager
def project_imports(root: Path | None) -> Iterator[None]:
    """For the block, import as ``pocketmesh serve`` does from ``root``; see the module docstring."""
    if root is None:
        yield
        return
    key = str(Path(root).resolve())
    scope = _scopes.setdefault(key, _RootScope(key))
    with scope:
        yield


def forget_project_imports(root: Path) -> None:
    """Drop the modules kept aside for ``root``: a new test session imports its agents afresh."""
    key = str(Path(root).resolve())
    scope = _scopes.get(key)
    if scope is not None and not scope.depth:
        del _scopes[key]


def load_flows(spec: str, root: Path | None = None) -> Mapping[str, BaseNode]:
    """Import ``module:attr`` (with ``root`` on the path, see :func:`project_imports`) and check it is a dict of flows."""
    module_name, attr = split_target(spec, "myapp.agent:flows")
    with project_imports(root):
        module = importlib.import_module(module_name)
    value = attribute_of(module, attr, spec)
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
