"""Scenario agents are imported from the rootdir, as ``pocketmesh serve`` imports from its working
directory, yet collecting them leaves no trace: test modules import the same things whether or
not, and in whichever order, scenario files are collected with them."""

from __future__ import annotations

import re

import pytest

# Loaded here, these outlive each pytester run, as they would across the sessions of one
# long-lived process: each session must still import its agents afresh.
import pocketmesh.a2a  # noqa: F401
import pocketmesh_testing.conversations.loading  # noqa: F401
import pocketmesh_testing.plugin  # noqa: F401

AGENT = """
from pathlib import Path

from pocketmesh import Flow
from pocketmesh.a2a import A2ABaseNode

from mymodule import GREETING, MARKER  # a sibling module of the project


class Greet(A2ABaseNode):
    async def execute(self, prep, shared, params, attempt):
        from lazyhelper import punctuate  # a sibling imported only when the node runs
        import mymodule
        assert mymodule.MARKER is MARKER  # the module the agent's import loaded, not a second copy
        return punctuate(GREETING)

    async def finalize(self, shared, prep, text, params):
        self.set_final_response_parts(shared, [self.create_text_part(text)])


flows = {"greet": Flow(Greet())}

with (Path(__file__).parent / "imports.log").open("a") as log:
    log.write("agent imported\\n")
"""

SCENARIO = "agent: agent:flows\nskill: greet\nturns:\n  - user: hi\n    expect: {state: completed, text: hello!}\n"

TESTS = """
import sys
from pathlib import Path

def test_the_project_root_is_not_on_the_path():
    assert str(Path(__file__).resolve().parents[1]) not in sys.path

def test_the_agent_modules_are_not_importable_from_tests():
    for name in ("mymodule", "agent", "lazyhelper"):
        try:
            __import__(name)
        except ModuleNotFoundError:
            continue
        raise AssertionError(f"{name} was importable")
"""

TESTS_IMPORTING = "from mymodule import GREETING\n\ndef test_greeting():\n    assert GREETING == 'hello'\n"

OUTCOME = re.compile(r"^(PASSED|FAILED|ERROR) (\S+)")


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(agent=AGENT, mymodule="GREETING = 'hello'\nMARKER = object()\n",
                        lazyhelper="def punctuate(text):\n    return text + '!'\n")
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "greet.yaml").write_text(SCENARIO)
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_paths.py").write_text(TESTS)
    (pytester.path / "tests" / "test_importing.py").write_text(TESTS_IMPORTING)
    return pytester


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """Node id -> outcome, from the ``-rA`` summary."""
    return {m.group(2): m.group(1) for line in result.outlines if (m := OUTCOME.match(line))}


def test_tests_import_the_same_with_scenarios_collected_before_after_or_not_at_all(project: pytest.Pytester) -> None:
    args = ("-rA", "-p", "no:cacheprovider", "--continue-on-collection-errors")
    alone = outcomes(project.runpytest_inprocess(*args, "tests"))
    before = project.runpytest_inprocess(*args, "scenarios", "tests")
    after = project.runpytest_inprocess(*args, "tests", "scenarios")
    assert alone == {
        "tests/test_paths.py::test_the_project_root_is_not_on_the_path": "PASSED",
        "tests/test_paths.py::test_the_agent_modules_are_not_importable_from_tests": "PASSED",
        "tests/test_importing.py": "ERROR",  # mymodule is not on this project's path
    }, alone
    scenario = {"scenarios/greet.yaml::greet": "PASSED"}  # the agent's eager and lazy sibling imports work
    assert outcomes(before) == {**alone, **scenario}, before.stdout.str()
    assert outcomes(after) == {**alone, **scenario}, after.stdout.str()
    # Each session imported the agent once: collecting it and playing it share one module.
    assert (project.path / "imports.log").read_text().splitlines() == ["agent imported"] * 2


def test_a_project_that_puts_its_root_on_the_path_imports_its_modules_everywhere(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\npythonpath = .\n")
    result = project.runpytest_inprocess("-rA", "-p", "no:cacheprovider", "scenarios", "tests/test_importing.py")
    assert outcomes(result) == {"scenarios/greet.yaml::greet": "PASSED",
                                "tests/test_importing.py::test_greeting": "PASSED"}, result.stdout.str()
