"""The README's examples run as written: each code block meant to run is taken from the README
itself (found by what it contains) and run the way a reader would run it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pocketmesh_testing.conversations.scripted_model import GREETING_RULES, GREETING_USER, ScriptedModel

README = Path(__file__).resolve().parents[1] / "README.md"


def block(language: str, containing: str) -> str:
    """The one ``language`` code block of the README that contains ``containing``."""
    found = [m.group(1) for m in re.finditer(rf"^```{language}\n(.*?)^```$", README.read_text(), re.S | re.M)
             if containing in m.group(1)]
    assert len(found) == 1, f"{len(found)} {language} blocks of the README contain {containing!r}"
    return found[0]


def expected_prints(code: str) -> list[str]:
    """What the ``print(...)  # ...`` lines of a README program say they print."""
    return [m.group(1).strip() for m in re.finditer(r"^\s*print\(.*\)\s+# (.*)$", code, re.M)]


def test_the_thirty_line_flow_and_its_server_run_and_run_again(tmp_path: Path) -> None:
    flow = block("python", "class Greet(BaseNode)")
    serving = block("python", "app = create_a2a_app(flows={\"greeting\": flow}, agent_card=card,\n")
    (tmp_path / "chat.py").write_text(flow + "\n" + serving + "print(type(app).__name__)\n")
    wanted = [*expected_prints(flow), "Starlette"]
    for attempt in (1, 2):  # the second run must not trip over the first one's finished run
        done = subprocess.run([sys.executable, "chat.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"run {attempt}:\n{done.stderr}"
        assert done.stdout.splitlines() == wanted
    assert (tmp_path / "runs.sqlite").is_file()


def test_the_fake_llm_example_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_router=block("python", "def test_summaries_take_the_summary_path"))
    pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_flow_property_examples_pass_under_the_profile_the_readme_picks(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(block("python", "settings.load_profile("))
    pytester.makepyfile(
        test_properties=block("python", "def test_the_router_always_ends"),
        test_profile="from hypothesis import settings\n\ndef test_profile():\n"
                     "    assert settings.get_current_profile_name() == 'dev'\n",
    )
    # A process of its own: this session's conftest has loaded a profile already.
    pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider").assert_outcomes(passed=3)


def test_the_scenario_file_example_passes(pytester: pytest.Pytester) -> None:
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "greeting.yaml").write_text(block("yaml", "name: greets by name and says goodbye"))
    pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider", "--snapshot-update").assert_outcomes(passed=1)
    pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_simulation_examples_record_once_then_replay_offline(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_visit=block("python", "async def test_a_visitor_is_greeted_and_leaves"))
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "visits.yaml").write_text(block("yaml", "simulations:"))
    # The first run records against a model: here a scripted one on loopback, for both files.
    monkeypatch.delenv("CI", raising=False)
    model = ScriptedModel(GREETING_USER * 2, GREETING_RULES)
    try:
        monkeypatch.setenv("OPENAI_BASE_URL", model.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", model.api_key)
        pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider").assert_outcomes(passed=2)
    finally:
        model.close()
    cassettes = sorted(p for p in pytester.path.rglob("*.yaml") if "cassettes" in p.parts)
    assert len(cassettes) == 2 and all(model.api_key not in p.read_text() for p in cassettes)
    # Later runs replay: no model, no endpoint, no key.
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("CI", "1")
    pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider").assert_outcomes(passed=2)
    assert os.environ.get("OPENAI_API_KEY") is None
