"""assert_resume_idempotent: replayed appends and repeated model calls are found; clean flows pass."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from hypothesis import settings

from pocketmesh import BaseNode, Flow, SQLitePersistence
from pocketmesh_testing import FakeLLM
from pocketmesh_testing.properties import PropertyFailure, assert_resume_idempotent

DEV = settings.get_profile("dev")


class Receive(BaseNode):
    """Takes the incoming item."""

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> None:
        shared["item"] = "order-1"


class BufferedTally(BaseNode):
    """Buggy: buffers entries on the node instance, so a replayed step appends them twice."""

    def __init__(self) -> None:
        super().__init__(name="Tally")
        self.pending: list[str] = []

    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> None:
        self.pending.append(shared["item"])

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> None:
        shared.setdefault("entries", []).extend(self.pending)
        self.pending.clear()


class Tally(BaseNode):
    """Appends the entry in finalize, from shared state only."""

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> None:
        shared.setdefault("entries", []).append(shared["item"])


def tally_flow(tally: BaseNode) -> Flow:
    receive = Receive()
    receive >> tally >> BaseNode(name="Done")
    return Flow(receive)


def test_a_replayed_step_that_appends_twice_is_found() -> None:
    with pytest.raises(PropertyFailure) as caught:
        assert_resume_idempotent(tally_flow(BufferedTally()), settings=DEV)
    message = str(caught.value)
    assert "after a crash during step 2 (Tally)" in message
    assert "shared['entries'] has 2 item(s) instead of 1: ['order-1', 'order-1'] instead of ['order-1']" in message


def test_an_idempotent_tally_passes() -> None:
    assert_resume_idempotent(tally_flow(Tally()), settings=DEV)


class Summarizer:
    """Asks the model once per instance and keeps the answer in memory."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.summary: str | None = None

    async def get(self, text: str) -> str:
        if self.summary is None:
            reply = await self.client.chat.completions.create(model="m", messages=[{"role": "user", "content": text}])
            self.summary = str(reply.choices[0].message.content)
        return self.summary


class Summarize(BaseNode):
    def __init__(self, summarizer: Summarizer, keep_in_shared: bool) -> None:
        super().__init__()
        self.summarizer = summarizer
        self.keep_in_shared = keep_in_shared

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> str:
        return await self.summarizer.get("summarize: " + shared.get("input", ""))

    async def finalize(self, shared: dict[str, Any], prep: Any, summary: str, params: dict[str, Any]) -> None:
        shared["summary_words"] = len(summary.split())
        if self.keep_in_shared:
            shared["summary"] = summary


class Respond(BaseNode):
    def __init__(self, summarizer: Summarizer) -> None:
        super().__init__()
        self.summarizer = summarizer

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> str:
        # Buggy path: without the summary in shared state it asks the (memoizing) helper again.
        if "summary" in shared:
            return str(shared["summary"])
        return await self.summarizer.get("summarize: " + shared.get("input", ""))

    async def finalize(self, shared: dict[str, Any], prep: Any, summary: str, params: dict[str, Any]) -> None:
        shared["reply"] = f"In short: {summary}"


def summary_flow_factory(client: Any, *, keep_in_shared: bool) -> Any:
    def build() -> Flow:
        summarizer = Summarizer(client)
        summarize = Summarize(summarizer, keep_in_shared)
        summarize >> Respond(summarizer)
        return Flow(summarize)

    return build


def test_a_flow_that_calls_the_model_again_on_resume_is_found() -> None:
    fake = FakeLLM()
    client = fake.openai_client(max_retries=0)
    with pytest.raises(PropertyFailure) as caught:
        assert_resume_idempotent(summary_flow_factory(client, keep_in_shared=False), llm=fake, settings=DEV,
                                 shared={"input": "a long text"})
    message = str(caught.value)
    assert "side effects repeated: the run stopped after step 1 (Summarize) and resumed in a fresh flow" in message
    assert "made 2 LLM call(s)/side effect(s) where the uninterrupted run made 1" in message
    assert "step 2 (Respond)" in message


def test_keeping_the_answer_in_shared_state_passes() -> None:
    fake = FakeLLM()
    client = fake.openai_client(max_retries=0)
    # The generated world has the model fail now and then: runs that end on it count, compared too.
    assert_resume_idempotent(summary_flow_factory(client, keep_in_shared=True), llm=fake, settings=DEV,
                             shared={"input": "a long text"}, expected_errors=(openai.APIStatusError,))
    assert fake.pending == []  # the property leaves the fake clean for its teardown check


def test_multi_turn_flows_with_sqlite(tmp_path: Any) -> None:
    class Ask(BaseNode):
        actions = ("input-required", "done")

        async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
            shared.setdefault("answers", []).append(shared.get("input"))
            return "done" if len(shared["answers"]) >= 3 else "input-required"

    ask = Ask()
    ask - "done" >> BaseNode(name="End")
    counter = iter(range(10**6))
    assert_resume_idempotent(
        Flow(ask), settings=settings(DEV, max_examples=10), shared={"input": "first"},
        persistence_factory=lambda: SQLitePersistence(str(tmp_path / f"db{next(counter)}.sqlite")),
    )


VOLATILE = '''
import time
import uuid
from typing import Any

import pytest
from hypothesis import settings
from pocketmesh import BaseNode, Flow
from pocketmesh_testing.properties import PropertyFailure, assert_resume_idempotent


class Open(BaseNode):
    """Opens an order: a fresh id and the time, as real agents do."""

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> None:
        shared["order"] = {"id": str(uuid.uuid4()), "opened": time.time()}


class Log(BaseNode):
    """Logs an event with its own id and time, from shared state only."""

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> None:
        shared.setdefault("events", []).append({"id": uuid.uuid4().hex, "order": shared["order"]["id"],
                                                "at": time.time()})


class DoubleLog(Log):
    """Buggy: keeps the event on the node, so a replayed step logs it twice."""

    def __init__(self) -> None:
        super().__init__(name="Log")
        self.pending: list[dict[str, Any]] = []

    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> None:
        self.pending.append({"id": uuid.uuid4().hex, "order": shared["order"]["id"], "at": time.time()})

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> None:
        shared.setdefault("events", []).extend(self.pending)
        self.pending.clear()


def orders(log: BaseNode) -> Flow:
    first = Open()
    first >> log >> BaseNode(name="Done")
    return Flow(first)


def test_ids_and_times_do_not_make_a_correct_flow_fail():
    assert_resume_idempotent(orders(Log()), settings=settings(max_examples=30, derandomize=True))


def test_a_replayed_event_with_fresh_ids_is_still_found():
    with pytest.raises(PropertyFailure, match=r"shared\\['events'\\] has 2 item\\(s\\) instead of 1"):
        assert_resume_idempotent(orders(DoubleLog()), settings=settings(max_examples=30, derandomize=True))
'''


def test_flows_that_store_uuids_and_timestamps_pass_and_a_double_effect_is_still_found(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_orders=VOLATILE)
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(passed=2)


def test_model_response_ids_kept_in_shared_state_read_the_same_after_a_resume() -> None:
    # Agents keep a response's id (to chain the next request to it): a resumed step that asks
    # the model again hears the same answer, with the same id, as the uninterrupted run did.
    fake = FakeLLM()
    client = fake.openai_client(max_retries=0)

    class Ask(BaseNode):
        async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> Any:
            answer = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "?"}])
            return {"id": answer.id, "text": answer.choices[0].message.content}

        async def finalize(self, shared: dict[str, Any], prep: Any, answer: Any, params: dict[str, Any]) -> None:
            shared.setdefault("answers", []).append(answer)

    def build() -> Flow:
        first, second = Ask(name="First"), Ask(name="Second")
        first >> second
        return Flow(first)

    assert_resume_idempotent(build, llm=fake, settings=settings(DEV, max_examples=20, derandomize=True),
                             expected_errors=(openai.APIStatusError,))


def test_an_unexpected_error_in_the_uninterrupted_run_fails_the_property(monkeypatch: pytest.MonkeyPatch) -> None:
    # No model given and no credentials: every run fails before its first step is done. Nothing
    # about resuming can be learnt from that, so the property fails with the error.
    from pocketmesh.examples.llm import build_router

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(PropertyFailure) as caught:
        assert_resume_idempotent(build_router, shared={"input": "hi"}, settings=DEV, scripted=False)
    message = str(caught.value)
    assert message.startswith("the uninterrupted run flow 'llm-router' failed with OpenAIError")
    assert "expected_errors=(openai.OpenAIError,)" in message
    assert_resume_idempotent(build_router, shared={"input": "hi"}, settings=DEV, scripted=False,
                             expected_errors=(openai.OpenAIError,))
