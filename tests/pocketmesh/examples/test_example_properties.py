"""The example agents as flow properties: every run ends, and resuming at any step changes
nothing. These are the tests ``pocketmesh gate`` runs for the examples (with the scenarios),
under the current Hypothesis profile: ``dev`` in everyday runs, ``release`` under the gate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pocketmesh import Flow
from pocketmesh.examples import fallback, greeting, llm, retry_loop, subflow
from pocketmesh_testing import FakeLLM
from pocketmesh_testing.properties import assert_resume_idempotent, assert_terminates
from pocketmesh_testing.properties.strategies import outside_world

pytestmark = pytest.mark.flow_property

FLOWS: dict[str, Callable[[], Flow]] = {
    "greeting": greeting.build_flow,
    # a deterministic loop: every attempt needs a retry until the budget is spent
    "retry-loop": lambda: retry_loop.build_flow(max_iterations=3),
    "fallback": fallback.build_flow,
    "subflow": subflow.build_flow,
}

SHARED: dict[str, dict[str, Any]] = {
    "greeting": {},
    "retry-loop": {},
    "fallback": {"input": "10 / 4"},
    "subflow": {"input": "one two three"},
}


# Forced past its budget (a scripted "loop-back"), the retry loop raises by design.
EXPECTED_ERRORS: dict[str, tuple[type[BaseException], ...]] = {"retry-loop": (RuntimeError,)}


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_example_always_terminates(name: str) -> None:
    assert_terminates(
        FLOWS[name](),
        shared=SHARED[name],
        params={"success_rate": 0.0},
        max_steps=50,
        expected_errors=EXPECTED_ERRORS.get(name, ()),
    )


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_example_resumes_idempotently(name: str) -> None:
    assert_resume_idempotent(FLOWS[name], shared=SHARED[name], params={"success_rate": 0.0},
                             expected_errors=EXPECTED_ERRORS.get(name, ()))


@pytest.fixture
def model(fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch) -> FakeLLM:
    """The LLM examples' ``openai`` client aimed at the fake model."""
    monkeypatch.setenv("OPENAI_BASE_URL", fake_llm.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", fake_llm.api_key)
    return fake_llm


def test_llm_router_terminates_whatever_the_model_says(model: FakeLLM) -> None:
    assert_terminates(
        llm.build_router(),
        shared={"input": "Tell me about rivers"},
        llm=model,
        world=outside_world(replies=["summarize", "analyze", "dunno"], failures=(), max_llm=4, max_turns=0),
        expected_errors=(Exception,),  # the model failing is a failure by design, not a hang
    )
    model.reset()


def test_llm_router_never_calls_the_model_again_on_resume(model: FakeLLM) -> None:
    assert_resume_idempotent(
        llm.build_router,
        shared={"input": "Tell me about rivers"},
        llm=model,
        world=outside_world(replies=["summarize", "analyze"], failures=(), max_llm=4, max_turns=0),
    )
    model.reset()
