"""Each public package re-exports its API with a sorted ``__all__`` whose names all resolve."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("module", ["pocketmesh", "pocketmesh.a2a", "pocketmesh.persistence", "pocketmesh_testing",
                                    "pocketmesh_testing.simulation"])
def test_all_is_sorted_and_every_name_resolves(module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__all__ == sorted(mod.__all__)
    for name in mod.__all__:
        assert getattr(mod, name) is not None, name


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
