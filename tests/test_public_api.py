"""Each public package re-exports its API with a sorted ``__all__`` whose names all resolve."""

from __future__ import annotations

import importlib
import inspect
import sys
import types

import pytest

from pocketmesh.errors import PocketMeshError
from pocketmesh_testing.errors import PocketMeshTestingError


@pytest.mark.parametrize("module", ["pocketmesh", "pocketmesh.a2a", "pocketmesh.persistence", "pocketmesh_testing",
                                    "pocketmesh_testing.simulation"])
def test_all_is_sorted_and_every_name_resolves(module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__all__ == sorted(mod.__all__)
    root = module.split(".")[0]
    for name in mod.__all__:
        exported = getattr(mod, name)
        home = defining_module(exported, name, root, module)
        # The export is the very object its defining module holds under the same name.
        assert getattr(home, name) is exported, (name, home.__name__)
        if own_definition(exported, root):
            assert exported.__name__ == name, f"{module}.{name} is {exported.__qualname__}"
            assert exported.__doc__, f"{module}.{name} has no docstring"
        if name.endswith("Error"):
            base = PocketMeshError if root == "pocketmesh" else PocketMeshTestingError
            assert inspect.isclass(exported) and issubclass(exported, base), name


def own_definition(exported: object, root: str) -> bool:
    """True for a class or function defined in a module of ``root`` (not an alias of a builtin)."""
    own = getattr(exported, "__module__", None) or ""
    return (inspect.isclass(exported) or inspect.isfunction(exported)) and own.split(".")[0] == root


def defining_module(exported: object, name: str, root: str, reexporter: str) -> types.ModuleType:
    """The module of ``root`` that defines ``name`` (a class or function's own module, else the
    submodule that binds the same object: the home of a constant or a type alias)."""
    if own_definition(exported, root):
        return sys.modules[exported.__module__]  # type: ignore[union-attr]
    homes = [m for key, m in sorted(sys.modules.items())
             if key.startswith(root + ".") and key != reexporter and getattr(m, name, None) is exported]
    assert homes, f"{reexporter}.{name} = {exported!r:.60} is defined in no module of {root}"
    return homes[0]


def test_the_runtime_never_imports_the_testing_package() -> None:
    import subprocess
    import sys

    code = "import sys, pocketmesh, pocketmesh.a2a, pocketmesh.cli; print('pocketmesh_testing' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


DOCUMENTED_MODULES = {
    "pocketmesh_testing.properties": ["DEV", "RELEASE", "PropertyFailure", "assert_resume_idempotent", "assert_terminates"],
    "pocketmesh_testing.strategies": ["action_sequences", "outside_world"],
    "pocketmesh_testing.stateful": ["A2AConversationMachine", "TaskModel", "a2a_conversation_machine"],
    "pocketmesh_testing.recorder": ["main", "record"],
    "pocketmesh_testing.simulation": ["Simulation", "SimulationAnswerError", "SimulationError", "Verdict", "simulate"],
}
"""Public modules the README documents, with the names users import from them."""


@pytest.mark.parametrize("module", sorted(DOCUMENTED_MODULES))
def test_every_documented_module_gives_its_names(module: str) -> None:
    mod = importlib.import_module(module)
    for name in DOCUMENTED_MODULES[module]:
        assert name in mod.__all__, f"{module}.__all__ lacks {name}"
        assert callable(getattr(mod, name)) or isinstance(getattr(mod, name), str), name


@pytest.mark.parametrize(
    "command",
    [["-m", "pocketmesh_testing.recorder", "--help"], ["-m", "pocketmesh.cli", "gate", "--help"],
     ["-m", "pocketmesh.cli", "replay", "--help"]],
    ids=["recorder", "gate", "replay"],
)
def test_documented_commands_still_answer_help(command: list[str]) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: "), out.stdout
