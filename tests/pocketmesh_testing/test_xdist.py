"""A user project run under pytest-xdist (-n 2): scenarios, cassettes, SQLite fixtures and
snapshots written by one run and replayed by the next, with tests spread over two workers."""

from __future__ import annotations

import pytest

from .conversations.test_scenarios import GREETING, STREAMING

STORE_TESTS = """
import pytest
from pocketmesh import Flow
from pocketmesh.examples import greeting

@pytest.mark.parametrize("n", range(4))
async def test_sqlite_keeps_a_paused_run(sqlite_persistence, n):
    flow = greeting.build_flow()
    first = await flow.run({"input": f"U{n}"}, run_id=f"run-{n}", persistence=sqlite_persistence)
    assert first.status == "input-required"
    assert await sqlite_persistence.load_run(f"run-{n}") is not None

@pytest.mark.parametrize("n", range(2))
async def test_every_backend(persistence, n):
    await persistence.save_run(f"r{n}", {"n": n}, {})
    assert await persistence.load_run(f"r{n}") == {"n": n}

async def test_agent_state(a2a_agent, shared_snapshot):
    reply = await a2a_agent(greeting.flows).conversation(skill="greeting").send("Dana")
    assert reply.shared == shared_snapshot
"""

LLM_TESTS = """
import json, os
import openai, pytest
from pocketmesh_testing.doubles.llm_replies import TextReply, render
from pocketmesh_testing.doubles.loopback import LoopbackServer

@pytest.fixture
def base_url():
    if os.environ.get("UPSTREAM") != "1":
        yield "http://127.0.0.1:9/v1"  # replay: nothing listens there
        return
    def handler(method, path, headers, body):
        request = json.loads(body)
        return render(TextReply("recorded: " + request["messages"][-1]["content"]), dialect="openai", model="m",
                      stream=False)
    server = LoopbackServer(handler)
    yield server.url + "/v1"
    server.close()

@pytest.mark.llm_cassette
@pytest.mark.parametrize("word", ["alpha", "beta", "gamma", "delta"])
async def test_chat(base_url, word):
    client = openai.AsyncOpenAI(api_key="sk-secret-123", base_url=base_url, max_retries=0)
    answer = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": word}])
    assert answer.choices[0].message.content == "recorded: " + word
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user project with scenarios, cassette tests, SQLite tests and a snapshot."""
    scenarios = pytester.path / "scenarios"
    scenarios.mkdir()
    (scenarios / "greeting.yaml").write_text(GREETING)
    (scenarios / "streaming.yaml").write_text(STREAMING)
    pytester.makepyfile(test_store=STORE_TESTS, test_llm=LLM_TESTS)
    return pytester


def test_a_project_passes_under_xdist_then_replays_under_xdist(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UPSTREAM", "1")
    recorded = project.runpytest_inprocess("-n", "2", "-p", "no:cacheprovider", "--snapshot-update")
    recorded.assert_outcomes(passed=15)
    cassettes = sorted(p.name for p in (project.path / "cassettes" / "test_llm").iterdir())
    assert cassettes == [f"test_chat-{w}.yaml" for w in ("alpha", "beta", "delta", "gamma")]
    assert "sk-secret-123" not in "".join((project.path / "cassettes" / "test_llm" / c).read_text() for c in cassettes)

    monkeypatch.setenv("UPSTREAM", "0")
    replayed = project.runpytest_inprocess("-n", "2", "-p", "no:cacheprovider", "--pocketmesh-record-mode=none")
    replayed.assert_outcomes(passed=15)
    replayed.stdout.no_fnmatch_line("*snapshot*fail*")
