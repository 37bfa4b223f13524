"""assert_terminates and the wiring check: planted non-terminating loops are found and shrunk."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from hypothesis import settings

from pocketmesh import BaseNode, Flow
from pocketmesh_testing import FakeLLM
from pocketmesh_testing.properties.failures import replay_flow_example
from pocketmesh_testing.properties import PropertyFailure, assert_terminates
from pocketmesh_testing.properties.strategies import outside_world
from pocketmesh_testing.properties.wiring import check_wiring

DEV = settings.get_profile("dev")


class Draft(BaseNode):
    """Writes a draft (counts drafts in shared state)."""

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> None:
        shared["drafts"] = shared.get("drafts", 0) + 1


class Review(BaseNode):
    """Asks the model whether the draft is good; revises until it says yes (and, if capped, gives up)."""

    def __init__(self, client: Any, cap: int | None) -> None:
        super().__init__()
        self.client = client
        self.cap = cap

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> str:
        reply = await self.client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": f"good? draft {shared['drafts']}"}]
        )
        return str(reply.choices[0].message.content)

    async def finalize(self, shared: dict[str, Any], prep: Any, verdict: str, params: dict[str, Any]) -> str:
        if verdict.strip().lower() == "yes":
            return "approve"
        if self.cap is not None and shared["drafts"] >= self.cap:
            return "give_up"
        return "revise"


class Publish(BaseNode):
    """Publishes the approved draft."""


class GiveUp(BaseNode):
    """Reports that no draft was approved."""


def review_flow(client: Any, *, cap: int | None) -> Flow:
    """Draft -> Review -(revise)-> Draft ... -(approve)-> Publish; with a cap, -(give_up)-> GiveUp."""
    draft, review = Draft(), Review(client, cap)
    draft >> review
    review - "approve" >> Publish()
    review - "revise" >> draft
    if cap is not None:
        review - "give_up" >> GiveUp()
    return Flow(draft)


def test_loop_without_exit_under_some_replies_is_found_and_shrunk(tmp_path: Path) -> None:
    fake = FakeLLM()
    flow = review_flow(fake.openai_client(max_retries=0), cap=None)
    with pytest.raises(PropertyFailure) as caught:
        assert_terminates(
            flow, llm=fake, max_steps=12, settings=DEV, world=outside_world(replies=["yes", "no"], failures=(), max_llm=3, max_turns=0),
            scripted=False, flow_ref="tests.example:review_flow", failures_dir=tmp_path,
        )
    message = str(caught.value)
    assert "did not terminate within 12 steps" in message
    assert "Review -> Draft -> Review" in message or "Draft -> Review -> Draft" in message
    assert "llm=['no']" in message  # shrunk: the model always says no
    saved = yaml.safe_load((tmp_path / "Flow-terminates.yaml").read_text())
    assert saved["llm"] == ["no"] and saved["flow"] == "tests.example:review_flow"
    assert saved["expect"] == {"terminates": True}


def test_capped_loop_terminates() -> None:
    fake = FakeLLM()
    flow = review_flow(fake.openai_client(max_retries=0), cap=3)
    assert_terminates(flow, llm=fake, max_steps=40, settings=DEV,
                      world=outside_world(replies=["yes", "no"], failures=()), scripted=False)


def test_unexpected_errors_fail_and_expected_ones_pass() -> None:
    class Flaky(BaseNode):
        async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> None:
            raise TimeoutError("model timed out")

    with pytest.raises(PropertyFailure, match="failed with TimeoutError: model timed out.*expected_errors"):
        assert_terminates(Flow(Flaky()), settings=DEV)
    assert_terminates(Flow(Flaky()), settings=DEV, expected_errors=(TimeoutError,))


def test_wiring_check_names_dead_ends_and_unwired_actions() -> None:
    class Loop(BaseNode):
        actions = ("again", "stop")

    a, b = Loop(name="A"), BaseNode(name="B")
    a - "again" >> b
    b >> a
    report = check_wiring(Flow(a))
    kinds = sorted((p.kind, p.node) for p in report.problems)
    assert kinds == [("no-exit", "A"), ("no-exit", "B"), ("unwired-action", "A")]
    assert "declares action 'stop', but nothing is wired to it" in str(report)
    with pytest.raises(PropertyFailure, match="cannot reach an end"):
        assert_terminates(Flow(a), settings=DEV)


async def test_works_from_async_tests_and_paused_runs_count_as_ended() -> None:
    class Ask(BaseNode):
        async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
            return "done" if shared.get("input") == "stop" else "input-required"

    ask = Ask()
    ask - "done" >> BaseNode(name="End")
    assert_terminates(Flow(ask), settings=DEV)


async def test_a_kept_example_replays(tmp_path: Path) -> None:
    path = tmp_path / "example.yaml"
    path.write_text(yaml.safe_dump({
        "flow": f"{__name__}:_replay_target", "actions": [{"Review": "revise"}, {"Review": "approve"}],
        "llm": ["no"], "max_steps": 20,
    }))
    fake = FakeLLM()
    global _client
    _client = fake.openai_client(max_retries=0)
    result = await replay_flow_example(path, llm=fake)
    assert [(s.node, s.action) for s in result.trace] == [
        ("Draft", "default"), ("Review", "revise"), ("Draft", "default"), ("Review", "approve"), ("Publish", "default"),
    ]


_client: Any = None


def _replay_target() -> Flow:
    return review_flow(_client, cap=None)


def test_only_nodes_with_a_choice_are_scripted() -> None:
    from pocketmesh_testing.properties.strategies import action_alphabet

    first, second, left, right = Draft(name="First"), Draft(name="Second"), Publish(name="L"), Publish(name="R")
    first >> second
    second - "left" >> left
    second - "right" >> right
    assert action_alphabet(Flow(first)) == {"Second": ("left", "right")}


COMPLETE_LOOP = '''
from typing import Any

from hypothesis import settings
from pocketmesh import BaseNode, Flow
from pocketmesh_testing.properties import PropertyFailure, assert_terminates
import pytest


class Poll(BaseNode):
    """Polls until the job is done; its only way out is the reserved action "complete"."""

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        shared["polls"] = shared.get("polls", 0) + 1
        return "complete" if shared["polls"] >= 3 else "wait"


class Wait(BaseNode):
    pass


class Spin(BaseNode):
    """Never leaves: a real endless loop."""

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        return "wait"


def loop(first: BaseNode) -> Flow:
    first - "wait" >> Wait() >> first
    return Flow(first)


def test_a_loop_that_ends_with_complete_terminates():
    assert_terminates(loop(Poll()), settings=settings(max_examples=10))


def test_an_endless_loop_still_fails_and_the_wiring_explains_it():
    with pytest.raises(PropertyFailure) as caught:
        assert_terminates(loop(Spin()), max_steps=20, settings=settings(max_examples=10))
    message = str(caught.value)
    assert "did not terminate within 20 steps" in message
    assert "node 'Spin' cannot reach an end" in message and "unless a node there returns 'complete'" in message
'''


def test_a_loop_whose_only_exit_is_the_reserved_complete_action_terminates(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_loops=COMPLETE_LOOP)
    pytester.runpytest_inprocess("-q").assert_outcomes(passed=2)


class Triage(BaseNode):
    """Routes every ticket the easy way; only an urgent ticket would take the other edge."""

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        if shared.get("urgent"):
            shared["pager"] = "on-call"
            return "escalate"
        return "answer"


class Escalate(BaseNode):
    """Pages whoever triage chose: correct, since triage sets the pager before escalating."""

    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> str:
        return str(shared["pager"])


def triage_flow() -> Flow:
    triage = Triage()
    triage - "answer" >> BaseNode(name="Answer")
    triage - "escalate" >> Escalate()
    return Flow(triage, name="Triage")


def test_a_failure_after_a_forced_action_says_so_and_scripted_false_runs_the_nodes_own_logic(tmp_path: Path) -> None:
    from pocketmesh_testing.properties.examples import load_example, replay

    with pytest.raises(PropertyFailure) as caught:
        assert_terminates(triage_flow(), settings=DEV, failures_dir=tmp_path, flow_ref=f"{__name__}:triage_flow")
    message = str(caught.value)
    forced = "scripted action(s) its nodes did not choose: Triage was made to take 'escalate' where it returned 'answer'"
    assert "failed with KeyError: 'pager'" in message
    assert forced in message
    assert "pass scripted=False" in message and "handle it in the node" in message
    # Its kept example, replayed, says the same.
    assert forced in str(replay(load_example(tmp_path / "Triage-terminates.yaml")))
    # The nodes' own logic never gets there: the flow is correct.
    assert_terminates(triage_flow(), settings=DEV, scripted=False)
    assert_terminates(triage_flow(), settings=DEV, scripted=False, shared={"urgent": True})


def test_a_failure_the_nodes_chose_themselves_says_nothing_of_scripts() -> None:
    class Broken(BaseNode):
        async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> str:
            return str(shared["missing"])

    with pytest.raises(PropertyFailure) as caught:
        assert_terminates(Flow(Broken()), settings=DEV)
    assert "failed with KeyError" in str(caught.value) and "did not choose" not in str(caught.value)


def test_a_fake_model_is_announced_through_the_environment_during_each_example(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://api.example.invalid/v1")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    seen: list[tuple[str | None, str | None]] = []

    class Ask(BaseNode):
        async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> str:
            import openai

            seen.append((os.environ.get("OPENAI_BASE_URL"), os.environ.get("OPENAI_API_KEY")))
            client = openai.AsyncOpenAI(max_retries=0)  # from the environment, as agents build theirs
            reply = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "?"}])
            return str(reply.choices[0].message.content)

    fake = FakeLLM()
    try:
        assert_terminates(Flow(Ask()), llm=fake, settings=settings(DEV, max_examples=10),
                          world=outside_world(failures=()))
        assert seen and set(seen) == {(fake.base_url, fake.api_key)}
    finally:
        fake.close()
    # Restored after the property: the test's own environment again.
    assert os.environ["OPENAI_BASE_URL"] == "http://api.example.invalid/v1" and "OPENAI_API_KEY" not in os.environ


def test_a_generated_model_failure_says_how_to_expect_or_exclude_it() -> None:
    fake = FakeLLM()
    flow = review_flow(fake.openai_client(max_retries=0), cap=2)
    try:
        with pytest.raises(PropertyFailure) as caught:
            assert_terminates(flow, llm=fake, settings=DEV, scripted=False)
        message = str(caught.value)
        assert "failed with RateLimitError" in message or "failed with InternalServerError" in message
        assert "the generated outside world includes model failures" in message
        assert "expected_errors=(openai.APIStatusError,)" in message and "world=outside_world(failures=())" in message
        assert_terminates(flow, llm=fake, settings=DEV, scripted=False, expected_errors=(openai.APIStatusError,))
        assert_terminates(flow, llm=fake, settings=DEV, scripted=False, world=outside_world(failures=()))
    finally:
        fake.close()
