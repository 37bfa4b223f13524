"""Each public package re-exports its API with a sorted ``__all__`` whose names all resolve."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("module", ["pocketmesh", "pocketmesh.a2a", "pocketmesh.persistence", "pocketmesh_testing"])
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
