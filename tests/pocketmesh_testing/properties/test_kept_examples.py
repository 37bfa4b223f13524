"""A property's minimal failing example is kept by default, names its flow's import path, and
becomes a regression test in one step: ``pocketmesh replay FILE``, or moved under scenarios/."""

from __future__ import annotations

import sys

import pytest
import yaml

SHOP = '''
from typing import Any

import openai
from pocketmesh import BaseNode, Flow

CAP = None  # the bug: nothing stops the review loop when the model keeps saying no


class Draft(BaseNode):
    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> None:
        shared["drafts"] = shared.get("drafts", 0) + 1


class Review(BaseNode):
    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> str:
        client = openai.AsyncOpenAI(max_retries=0)  # the model, from OPENAI_BASE_URL
        reply = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "good?"}])
        return str(reply.choices[0].message.content)

    async def finalize(self, shared: dict[str, Any], prep: Any, verdict: str, params: dict[str, Any]) -> str:
        if verdict == "yes":
            return "approve"
        return "give_up" if CAP is not None and shared["drafts"] >= CAP else "revise"


def build_flow() -> Flow:
    draft, review = Draft(), Review()
    draft >> review
    review - "approve" >> BaseNode(name="Publish")
    review - "revise" >> draft
    review - "give_up" >> BaseNode(name="GiveUp")
    return Flow(draft, name="Review")
'''

TESTS = '''
import pytest
from hypothesis import settings
from pocketmesh_testing.properties import assert_terminates
from pocketmesh_testing.properties.strategies import outside_world

from shop import build_flow


@pytest.mark.flow_property
def test_reviews_end(fake_llm, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", fake_llm.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", fake_llm.api_key)
    assert_terminates(build_flow(), llm=fake_llm, max_steps=12, scripted=False, settings=settings(max_examples=30),
                      world=outside_world(replies=["yes", "no"], failures=(), max_llm=3, max_turns=0))
'''


@pytest.fixture
def shop(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project whose review loop never ends when the model keeps saying no."""
    monkeypatch.delenv("POCKETMESH_FAILURES_DIR", raising=False)  # the default place, as a user has it
    pytester.makeini("[pytest]\npythonpath = .\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(shop=SHOP)
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_review.py").write_text(TESTS)
    return pytester


def replay(project: pytest.Pytester, *files: str) -> pytest.RunResult:
    return project.run(sys.executable, "-m", "pocketmesh.cli", "replay", *files, "--", "-p", "no:cacheprovider")


def test_a_failing_example_is_kept_by_default_and_replays_until_the_bug_is_fixed(shop: pytest.Pytester) -> None:
    found = shop.runpytest_inprocess("-p", "no:cacheprovider", "tests")
    found.assert_outcomes(failed=1)
    kept = shop.path / ".pocketmesh" / "failures" / "Review-terminates.yaml"
    found.stdout.fnmatch_lines([f"*minimal example saved to {kept}; replay it with: pocketmesh replay {kept}*"])
    example = yaml.safe_load(kept.read_text())
    assert example["flow"] == "shop:build_flow" and example["property"] == "terminates"
    assert example["llm"] == ["no"] and example["max_steps"] == 12

    still_broken = replay(shop, str(kept))
    assert still_broken.ret == 1
    still_broken.stdout.fnmatch_lines(["*flow example 'Review terminates' (terminates of shop:build_flow) still fails:*",
                                       "*did not terminate within 12 steps*"])

    (shop.path / "shop.py").write_text(SHOP.replace("CAP = None", "CAP = 3"))
    fixed = replay(shop)  # no file: every kept example
    assert fixed.ret == 0, fixed.stdout.str()
    fixed.stdout.fnmatch_lines(["*1 passed*"])

    # Kept as a regression test: moved under scenarios/, the plugin collects and runs it.
    (shop.path / "scenarios").mkdir()
    kept.rename(shop.path / "scenarios" / kept.name)
    regression = shop.runpytest_inprocess("-p", "no:cacheprovider", "-v", "scenarios")
    regression.assert_outcomes(passed=1)
    regression.stdout.fnmatch_lines(["scenarios/Review-terminates.yaml::Review terminates PASSED*"])


def test_replay_refuses_a_file_that_is_not_an_example(shop: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    from pocketmesh_testing.properties.examples import replay_main

    (shop.path / "other.yaml").write_text("levels: [1, 2]\n")
    assert replay_main(["other.yaml"]) == 4
    assert capsys.readouterr().err.startswith(
        "pocketmesh replay: other.yaml is neither a scenario file (`scenarios:` or `turns:`) nor a saved flow example")


RESUME_TESTS = '''
import pytest
from hypothesis import settings
from pocketmesh_testing.properties import assert_resume_idempotent

from ledger import build_ledger


@pytest.mark.flow_property
def test_resumes_cleanly():
    assert_resume_idempotent(build_ledger, settings=settings(max_examples=30, derandomize=True))
'''

LEDGER = '''
from typing import Any
from pocketmesh import BaseNode, Flow

PENDING: list[str] = []  # the bug: work kept outside shared state is done again on resume


class Post(BaseNode):
    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> None:
        PENDING.append("entry")

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> None:
        shared.setdefault("entries", []).extend(PENDING)
        PENDING.clear()


def build_ledger() -> Flow:
    start = BaseNode(name="Start")
    start >> Post() >> BaseNode(name="Done")
    return Flow(start, name="Ledger")
'''


def test_a_resume_example_names_its_factory_and_replays_as_a_test(pytester: pytest.Pytester,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POCKETMESH_FAILURES_DIR", raising=False)
    pytester.makepyfile(ledger=LEDGER, test_ledger=RESUME_TESTS)
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(failed=1)
    kept = pytester.path / ".pocketmesh" / "failures" / "Ledger-resume.yaml"
    example = yaml.safe_load(kept.read_text())
    assert example["flow"] == "ledger:build_ledger" and example["interrupt"] == {"crash_during_step": 2}
    replayed = pytester.runpytest_inprocess("-p", "no:cacheprovider", str(kept))  # named: collected from anywhere
    replayed.assert_outcomes(failed=1)
    replayed.stdout.fnmatch_lines(["*resume-idempotent of ledger:build_ledger) still fails:*",
                                   "*shared[[]'entries'[]] has 2 item(s) instead of 1*"])


def test_an_empty_failures_dir_variable_keeps_nothing(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_loop="""
        from pocketmesh import BaseNode, Flow
        from pocketmesh_testing.properties import assert_terminates

        class Broken(BaseNode):
            async def prepare(self, shared, params):
                return shared["missing"]

        def test_broken_terminates():
            assert_terminates(Flow(Broken()))
    """)
    monkeypatch.setenv("POCKETMESH_FAILURES_DIR", "")  # set, and empty: not written (the ini default is not used)
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert "minimal example saved" not in result.stdout.str()
    assert not (pytester.path / ".pocketmesh").exists()
