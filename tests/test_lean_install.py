"""A runtime install is the runtime and the A2A server only: built as a wheel and installed into
a fresh venv with its runtime requirements, it holds none of the test stack, pytest runs an
unrelated project there as if the plugin were absent, and the harness's fixtures and commands
say which extra brings them (`pocketmesh demo`, `gate` and `replay` alike)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_STACK = {
    "pytest", "pytest-asyncio", "hypothesis", "vcrpy", "coverage", "syrupy", "respx", "openai",
    "pyyaml", "jsonschema", "pytest-timeout", "pytest-xdist",
}

UNRELATED = {
    "test_plain.py": """
        import socket

        import pytest

        @pytest.fixture
        def persistence():
            return "the project's own fixture"

        def test_own_fixture_wins(persistence):
            assert persistence == "the project's own fixture"

        def test_plain():
            assert sum([1, 2]) == 3

        def test_an_unknown_host_fails_as_without_the_plugin():
            with pytest.raises(socket.gaierror) as caught:
                socket.getaddrinfo("pocketmesh-lean-check.invalid", 80)
            assert type(caught.value) is socket.gaierror
    """,
}

HARNESS = """
    def test_wants_the_fake_llm(fake_llm):
        pass
"""


def run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env={**os.environ, "PIP_NO_INPUT": "1", **(env or {})},
        capture_output=True, text=True, timeout=600,
    )
    return done


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def runtime_requirements(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode()
    lines = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    return [line for line in lines if "extra ==" not in line]


def outcome(stdout: str) -> str:
    return re.findall(r"^=* ?(\d+ \w+.*) in [\d.]+s", stdout, re.M)[-1]


@pytest.mark.slow
def test_a_runtime_only_install_has_no_test_stack_and_leaves_pytest_alone(tmp_path: Path) -> None:
    pip = [sys.executable, "-m", "pip"]
    # Built from a copy: setuptools leaves build/ and an egg-info beside the sources it builds.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name in ("pocketmesh", "pocketmesh_testing"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    ok(run(*pip, "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", source))
    wheel = next((tmp_path / "dist").glob("pocketmesh-*.whl"))
    requirements = runtime_requirements(wheel)
    assert not any(name in " ".join(requirements).lower() for name in ("pytest", "hypothesis", "vcrpy", "openai"))

    venv = tmp_path / "runtime"
    ok(run(sys.executable, "-m", "venv", "--without-pip", venv))
    python = venv / "bin" / "python"
    ok(run(*pip, "--python", python, "install", "-q", "--no-deps", wheel))
    ok(run(*pip, "--python", python, "install", "-q", *requirements))

    installed = {p["name"].lower() for p in json.loads(ok(run(*pip, "--python", python, "list", "--format", "json")))}
    assert installed & TEST_STACK == set()
    assert {"pocketmesh", "a2a-sdk", "uvicorn", "starlette"} <= installed
    size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file())
    print(f"runtime-only venv: {len(installed)} packages, {size / 1e6:.0f} MB")

    # The runtime and the A2A server import and run there.
    served = ok(run(python, "-c", textwrap.dedent("""
        import asyncio, httpx
        from pocketmesh import BaseNode, Flow
        from pocketmesh.a2a import create_a2a_app
        from pocketmesh.examples.greeting import flows
        async def main():
            app = create_a2a_app(flows, persistence=__import__("pocketmesh").InMemoryPersistence())
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as http:
                card = (await http.get("/.well-known/agent-card.json")).json()
            print(card["skills"][0]["id"], (await Flow(BaseNode()).run()).status)
        asyncio.run(main())
    """)))
    assert served.split() == ["greeting", "completed"]

    # The commands and example that need the harness say which extra brings it.
    pocketmesh = venv / "bin" / "pocketmesh"
    for command in (("demo",), ("gate",), ("replay",), ("replay", "kept.yaml")):
        done = run(pocketmesh, *command, cwd=tmp_path)
        assert done.returncode == 2, (command, done.stderr)
        assert done.stderr.startswith(f"pocketmesh {command[0]}: `pocketmesh {command[0]}` is part of pocketmesh's "
                                      f"test harness"), (command, done.stderr)
        assert "pip install 'pocketmesh[testing]'" in done.stderr and "Traceback" not in done.stderr, done.stderr
    llm = run(pocketmesh, "serve", "pocketmesh.examples.llm:flows", cwd=tmp_path)
    assert llm.returncode == 2 and "openai package" in llm.stderr and "pocketmesh[testing]" in llm.stderr, llm.stderr

    # An unrelated project brings its own pytest; its run is the same with and without the plugin.
    ok(run(*pip, "--python", python, "install", "-q", "pytest"))
    project = tmp_path / "project"
    project.mkdir()
    for name, body in UNRELATED.items():
        (project / name).write_text(textwrap.dedent(body))
    (project / "pytest.ini").write_text("[pytest]\n")
    plugins = ok(run(python, "-c", "import importlib.metadata as m; print([e.value for e in m.entry_points(group='pytest11')])"))
    assert "pocketmesh_testing.plugin" in plugins
    with_plugin = run(python, "-m", "pytest", "-q", cwd=project)
    without = run(python, "-m", "pytest", "-q", "-p", "no:pocketmesh", cwd=project)
    assert with_plugin.returncode == without.returncode == 0, with_plugin.stdout + with_plugin.stderr
    assert outcome(with_plugin.stdout) == outcome(without.stdout)
    assert outcome(with_plugin.stdout) == "3 passed"
    helps = [ok(run(python, "-m", "pytest", "--help", *extra, cwd=project)) for extra in ((), ("-p", "no:pocketmesh"))]
    assert "pocketmesh" not in helps[0] and helps[0] == helps[1]

    # A harness fixture asked for there names the extra.
    (project / "test_harness.py").write_text(textwrap.dedent(HARNESS))
    wants = run(python, "-m", "pytest", "-q", "test_harness.py", cwd=project)
    assert wants.returncode == 1
    assert "the fixture 'fake_llm' is part of pocketmesh's test harness" in wants.stdout
    assert "pip install 'pocketmesh[testing]'" in wants.stdout
