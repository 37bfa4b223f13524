"""The seed's LLM decision node and token-streaming node, on the real openai SDK: scripted with
``fake_llm``, and replayed from a cassette recorded against a loopback model server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pocketmesh.examples.llm import build_router
from pocketmesh_testing import FakeLLM
from pocketmesh_testing.doubles.loopback import LoopbackServer

CASSETTE = Path(__file__).parent / "cassettes" / "test_llm_examples" / "router_replay.yaml"


async def run_router(user_input: str) -> tuple[Any, list[dict[str, Any]]]:
    artifacts: list[dict[str, Any]] = []
    result = await build_router().run({"input": user_input}, on_artifact=artifacts.append)
    return result, artifacts


@pytest.fixture
def openai_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Point the examples' ``openai.AsyncOpenAI()`` at a base URL set by the test."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("POCKETMESH_MODEL", "gpt-test")

    def use(base_url: str) -> None:
        monkeypatch.setenv("OPENAI_BASE_URL", base_url)

    yield use


async def test_decision_node_routes_to_summary_and_streams_tokens(fake_llm: FakeLLM, openai_env: Any) -> None:
    openai_env(fake_llm.base_url)
    fake_llm.reply("Summarize")
    fake_llm.reply_stream(["Rivers ", "carry ", "water."])
    result, artifacts = await run_router("Tell me about rivers")
    assert result.status == "completed"
    assert result.shared["intent"] == "summarize"
    assert result.shared["answer"] == "Rivers carry water."
    assert [(step.node, step.action) for step in result.trace] == [
        ("LLMBranchNode", "summary-path"),
        ("Summarize", "complete"),
    ]
    assert [a["parts"][0]["text"] for a in artifacts] == ["Rivers ", "carry ", "water."]
    assert {a["artifactId"] for a in artifacts} == {"response-stream"}
    classify, answer = fake_llm.calls
    assert classify.model == "gpt-test"
    assert classify.body["max_tokens"] == 10
    assert classify.messages[-1]["content"].endswith("Tell me about rivers")
    assert answer.stream
    assert answer.messages[0]["content"].startswith("Summarize")


async def test_any_other_intent_takes_the_analysis_path(fake_llm: FakeLLM, openai_env: Any) -> None:
    openai_env(fake_llm.base_url)
    fake_llm.reply("analyze")
    fake_llm.reply_stream(["Claim: ", "none."])
    result, _ = await run_router("Is this sound?")
    assert result.shared["intent"] == "analyze"
    assert result.trace[-1].node == "Analyze"


async def test_model_errors_fail_the_run_with_the_status(fake_llm: FakeLLM, openai_env: Any) -> None:
    openai_env(fake_llm.base_url)
    for _ in range(3):  # the SDK's own two retries, then it gives up
        fake_llm.fail(status=500)
    result, _ = await run_router("anything")
    assert result.status == "failed"
    assert "500" in str(result.error)


def _dead_base_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.mark.llm_cassette(path=CASSETTE)
async def test_router_replays_from_a_recorded_cassette(llm_cassette: Any, openai_env: Any) -> None:
    """Recorded once against a loopback model server; replayed with no server at all."""
    upstream: LoopbackServer | None = None
    if llm_cassette.may_record and not CASSETTE.exists():
        model = FakeLLM()
        model.reply("summarize")
        model.reply_stream(["Lakes ", "are ", "still."])
        upstream = LoopbackServer(model.handle)
        openai_env(f"http://127.0.0.1:{upstream.port}/v1")
    else:
        openai_env(_dead_base_url())
    try:
        result, artifacts = await run_router("Tell me about lakes")
    finally:
        if upstream is not None:
            upstream.close()
    assert result.status == "completed", result.error
    assert result.shared["answer"] == "Lakes are still."
    assert [a["parts"][0]["text"] for a in artifacts] == ["Lakes ", "are ", "still."]
    text = CASSETTE.read_text() if CASSETTE.exists() else ""
    assert "sk-test-not-a-real-key" not in text
