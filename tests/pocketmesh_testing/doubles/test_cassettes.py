"""LLM cassettes: record against a loopback server, replay without it, scrub, explain misses."""

from __future__ import annotations

import pytest

from pocketmesh_testing.doubles.loopback import free_port

USER_TESTS = """
import json, os
import openai, pytest
from pocketmesh_testing.doubles.llm_replies import StreamReply, TextReply, render
from pocketmesh_testing.doubles.loopback import LoopbackServer

PORT = {port}

@pytest.fixture
def upstream():
    if os.environ.get("UPSTREAM") != "1":
        yield None  # replay: nothing listens on PORT any more
        return
    def handler(method, path, headers, body):
        request = json.loads(body)
        stream = bool(request.get("stream"))
        reply = StreamReply(["re", "corded"]) if stream else TextReply(
            "recorded: " + request["messages"][-1]["content"])
        return render(reply, dialect="openai", model="m", stream=stream)
    server = LoopbackServer(handler, port=PORT)
    yield server
    server.close()

def client():
    return openai.AsyncOpenAI(api_key="sk-secret-123", base_url=f"http://127.0.0.1:{{PORT}}/v1",
                              max_retries=0)

@pytest.mark.llm_cassette
async def test_chat(upstream):
    word = os.environ.get("WORD", "hello")
    answer = await client().chat.completions.create(
        model="m", messages=[{{"role": "user", "content": word}}], temperature=0)
    assert answer.choices[0].message.content == "recorded: " + word
    stream = await client().chat.completions.create(
        model="m", messages=[{{"role": "user", "content": "stream please"}}], stream=True)
    assert [c.choices[0].delta.content async for c in stream if c.choices[0].delta.content] == ["re", "corded"]
"""


@pytest.fixture
def user_tests(pytester: pytest.Pytester) -> pytest.Pytester:
    """A test module that talks to a loopback model server through a cassette."""
    pytester.makepyfile(test_user=USER_TESTS.format(port=free_port()))
    return pytester


def test_record_then_replay_without_the_server(user_tests: pytest.Pytester,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTREAM", "1")
    user_tests.runpytest_inprocess("-q").assert_outcomes(passed=1)
    cassette = user_tests.path / "cassettes" / "test_user" / "test_chat.yaml"
    text = cassette.read_text()
    assert "recorded: hello" in text and "data: [DONE]" in text
    assert "sk-secret-123" not in text and "authorization" not in text.lower()

    monkeypatch.delenv("UPSTREAM")
    user_tests.runpytest_inprocess("-q").assert_outcomes(passed=1)
    # Key order in the JSON body does not matter: bodies match by structure.
    user_tests.runpytest_inprocess("-q", "--pocketmesh-record-mode=none").assert_outcomes(passed=1)


def test_unmatched_request_names_it_and_the_closest(user_tests: pytest.Pytester,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTREAM", "1")
    user_tests.runpytest_inprocess("-q").assert_outcomes(passed=1)
    monkeypatch.delenv("UPSTREAM")
    monkeypatch.setenv("WORD", "goodbye")
    result = user_tests.runpytest_inprocess("-q", "--pocketmesh-record-mode=none")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*CassetteMissError: cassette *test_chat.yaml (record mode 'none', 2 interaction(s)) has no "
        "recorded response for POST http://127.0.0.1:*/v1/chat/completions body *goodbye*"
        "Closest recorded request (#1): POST http://127.0.0.1:*/v1/chat/completions*"
        "It differs in body $.messages[[]0].content: recorded 'hello' != sent 'goodbye'*",
    ])


def test_ci_means_record_mode_none(user_tests: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("UPSTREAM", "1")
    result = user_tests.runpytest_inprocess("-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*CassetteMissError*record mode 'none'*The cassette is empty*"])
    assert not (user_tests.path / "cassettes" / "test_user" / "test_chat.yaml").exists()


def test_marker_path_fixture_and_extra_filters(pytester: pytest.Pytester) -> None:
    port = free_port()
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n"
                     "pocketmesh_cassette_filter_headers = x-team-token\n")
    pytester.makepyfile(test_user=f"""
        import httpx, pytest
        from pocketmesh_testing.doubles.llm_replies import TextReply, render
        from pocketmesh_testing.doubles.loopback import LoopbackServer

        def handler(method, path, headers, body):
            return render(TextReply("hi"), dialect="openai", model="m", stream=False)

        @pytest.mark.llm_cassette("shared/one.yaml")
        def test_named(llm_cassette):
            server = LoopbackServer(handler, port={port})
            try:
                httpx.post("http://127.0.0.1:{port}/v1/chat/completions?api_key=k1",
                           json={{"model": "m"}}, headers={{"x-team-token": "t0ken"}})
            finally:
                server.close()
            assert llm_cassette.may_record and llm_cassette.interactions == 1
    """)
    pytester.runpytest_inprocess("-q").assert_outcomes(passed=1)
    text = (pytester.path / "cassettes" / "test_user" / "shared" / "one.yaml").read_text()
    assert "t0ken" not in text and "k1" not in text and "x-team-token" not in text


def test_unused_cassettes_are_reported(user_tests: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTREAM", "1")
    user_tests.runpytest_inprocess("-q").assert_outcomes(passed=1)
    orphan = user_tests.path / "cassettes" / "test_removed" / "test_old.yaml"
    stale = user_tests.path / "cassettes" / "test_user" / "test_renamed.yaml"
    for path in (orphan, stale):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("interactions: []\n")
    monkeypatch.delenv("UPSTREAM")
    result = user_tests.runpytest_inprocess("-q", "--pocketmesh-unused-cassettes")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*pocketmesh unused cassettes*", f"unused cassette: {orphan}",
                                 f"unused cassette: {stale}", "2 cassette file(s) no collected test used*"])
    assert "test_chat.yaml" not in result.stdout.str()


def test_fake_llm_traffic_is_never_recorded(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="""
        import openai, pytest

        @pytest.mark.llm_cassette
        async def test_both(fake_llm, llm_cassette):
            fake_llm.reply("in-process").reply("loopback")
            await fake_llm.openai_client().chat.completions.create(model="m", messages=[])
            client = openai.AsyncOpenAI(api_key="k", base_url=fake_llm.base_url)
            answer = await client.chat.completions.create(model="m", messages=[])
            assert answer.choices[0].message.content == "loopback"
            assert llm_cassette.interactions == 0
    """)
    pytester.runpytest_inprocess("-q").assert_outcomes(passed=1)
    assert not (pytester.path / "cassettes" / "test_user" / "test_both.yaml").exists()


RESPONSES_TESTS = """
import json, os
import openai, pytest
from pydantic import BaseModel
from pocketmesh_testing import FakeLLM
from pocketmesh_testing.doubles.loopback import LoopbackServer

PORT = {port}


class Weather(BaseModel):
    city: str
    celsius: int


@pytest.fixture
def upstream():
    if os.environ.get("UPSTREAM") != "1":
        yield None  # replay: nothing listens on PORT any more
        return
    # A scripted model behind a plain loopback server: to the cassette, just another host.
    model = FakeLLM()
    model.reply("Paris").reply_stream(["Os", "lo"]).reply_tool_call("get_weather", {{"city": "Oslo"}}, call_id="c1")
    model.reply(json.dumps({{"city": "Oslo", "celsius": 3}}))
    server = LoopbackServer(model.handle, port=PORT)
    yield model
    server.close()
    model.verify()


@pytest.mark.llm_cassette
async def test_responses(upstream):
    client = openai.AsyncOpenAI(api_key="sk-secret-456", base_url=f"http://127.0.0.1:{{PORT}}/v1", max_retries=0)
    plain = await client.responses.create(model="m", input="Capital of France?")
    assert plain.output_text == "Paris"
    stream = await client.responses.create(model="m", input="Capital of Norway?", stream=True)
    events = [e async for e in stream]
    assert [e.delta for e in events if e.type == "response.output_text.delta"] == ["Os", "lo"]
    assert events[-1].type == "response.completed" and events[-1].response.output_text == "Oslo"
    tool = {{"type": "function", "name": "get_weather", "parameters": {{"type": "object"}}, "strict": False}}
    called = await client.responses.create(model="m", input="Weather?", tools=[tool])
    assert (called.output[0].name, json.loads(called.output[0].arguments)) == ("get_weather", {{"city": "Oslo"}})
    parsed = await client.responses.parse(model="m", input="Weather as JSON", text_format=Weather)
    assert parsed.output_parsed == Weather(city="Oslo", celsius=3)
"""


def test_responses_api_traffic_records_and_replays_streams_included(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_user=RESPONSES_TESTS.format(port=free_port()))
    monkeypatch.setenv("UPSTREAM", "1")
    pytester.runpytest_inprocess("-q").assert_outcomes(passed=1)
    text = (pytester.path / "cassettes" / "test_user" / "test_responses.yaml").read_text()
    assert "/v1/responses" in text and "event: response.output_text.delta" in text
    assert '"type": "function_call"' in text and "sk-secret-456" not in text
    monkeypatch.delenv("UPSTREAM")
    pytester.runpytest_inprocess("-q", "--pocketmesh-record-mode=none").assert_outcomes(passed=1)
