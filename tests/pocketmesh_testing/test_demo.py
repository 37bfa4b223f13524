"""`pocketmesh demo` with nothing to play says what is missing and where the example scenarios are."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pocketmesh_testing.demo import run_main_job


def demo(*targets: str, dirs: tuple[str, ...] = ("scenarios",)) -> tuple[int, str]:
    out = io.StringIO()
    code = run_main_job(list(targets) or None, scenario_dirs=dirs, out=out)
    return code, out.getvalue()


def test_outside_a_clone_it_says_where_the_example_scenarios_are(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, text = demo()
    assert code == 5
    assert text.startswith(f"pocketmesh demo: no scenario directory scenarios (looked from {tmp_path}); nothing to play.")
    assert "they live in the pocketmesh repository's scenarios/ directory" in text and "--scenarios DIR" in text


def test_an_empty_scenario_directory_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "levels.yaml").write_text("levels: [{name: moat}]\n")
    code, text = demo(dirs=("mine",))
    assert code == 5
    assert text.startswith("pocketmesh demo: no scenario files in mine (YAML with `scenarios:` or `turns:`)")


def test_an_agent_no_scenario_names_lists_the_agents_they_do_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "hello.yaml").write_text(
        "agent: pocketmesh.examples.greeting:flows\nskill: greeting\nturns:\n  - user: Dana\n")
    code, text = demo("pocketmesh.examples.llm:flows")
    assert code == 5
    assert text == ("pocketmesh demo: no scenario in scenarios names pocketmesh.examples.llm:flows; the scenarios there "
                    "name pocketmesh.examples.greeting:flows. Pass one of those, or no agent to play them all.\n")
