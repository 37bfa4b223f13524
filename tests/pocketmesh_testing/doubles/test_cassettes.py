"""LLM cassettes: record against a loopback server, replay without it, scrub, explain misses."""

from __future__ import annotations

import pytest

from pocketmesh_testing.doubles.cassettes import CASSETTE_HEADER
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
        "recorded response for POST http://127.0.0.1:*/v1/chat/completions. "
        "Closest recorded request (#1): POST http://127.0.0.1:*/v1/chat/completions. "
        "It differs in body $.messages[[]0].content: recorded 'hello' != sent 'goodbye'.*"
        "Sent: POST http://127.0.0.1:*/v1/chat/completions body *goodbye*",
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
        path.write_text(CASSETTE_HEADER + "\ninteractions: []\n")
    # Another tool's cassettes in the same place (pytest-recording's layout) are not ours to judge.
    foreign = user_tests.path / "cassettes" / "test_removed" / "test_recorded_elsewhere.yaml"
    foreign.write_text("interactions: []\nversion: 1\n")
    monkeypatch.delenv("UPSTREAM")
    result = user_tests.runpytest_inprocess("-q", "--pocketmesh-unused-cassettes")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*pocketmesh unused cassettes*", f"unused cassette: {orphan}",
                                 f"unused cassette: {stale}", "2 cassette file(s) no collected test used*"])
    assert "test_chat.yaml" not in result.stdout.str() and foreign.name not in result.stdout.str()


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


LONG_PROMPT_TESTS = """
import json, os
import openai, pytest
from pocketmesh import Flow
from pocketmesh.a2a import A2ABaseNode
from pocketmesh_testing.doubles.llm_replies import TextReply, render
from pocketmesh_testing.doubles.loopback import LoopbackServer

PORT = {port}
PROMPT = "Summarize this quarterly report on river levels, rainfall and reservoir capacity for the board: " * 3


class Summarize(A2ABaseNode):
    async def execute(self, prep, shared, params, attempt):
        client = openai.AsyncOpenAI(max_retries=0)
        answer = await client.chat.completions.create(
            model="m", messages=[{{"role": "user", "content": PROMPT + shared["input"]}}])
        return answer.choices[0].message.content

    async def finalize(self, shared, prep, text, params):
        self.set_final_response_parts(shared, [self.create_text_part(text)])


@pytest.fixture
def upstream(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{{PORT}}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-k")
    if os.environ.get("UPSTREAM") != "1":
        yield
        return
    server = LoopbackServer(lambda m, p, h, b: render(TextReply("ok"), dialect="openai", model="m", stream=False),
                            port=PORT)
    yield
    server.close()


@pytest.mark.llm_cassette
async def test_summary(upstream, a2a_agent):
    reply = await a2a_agent({{"summary": Flow(Summarize())}}).conversation().send(os.environ["QUARTER"])
    assert reply.text == "ok"
"""


def test_a_miss_is_the_failing_tests_message_and_shows_where_the_values_differ(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The model is called inside an agent, whose task then fails with a private error: without
    # the plugin's help the miss would only be in the captured log.
    pytester.makepyfile(test_user=LONG_PROMPT_TESTS.format(port=free_port()))
    monkeypatch.setenv("UPSTREAM", "1")
    monkeypatch.setenv("QUARTER", "Q1 2026")
    pytester.runpytest_inprocess("-q").assert_outcomes(passed=1)
    monkeypatch.delenv("UPSTREAM")
    monkeypatch.setenv("QUARTER", "Q2 2026")
    result = pytester.runpytest_inprocess("-q", "--pocketmesh-record-mode=none", "-rf")
    result.assert_outcomes(failed=1)
    # The difference sits after some 300 identical characters: the message cuts around it.
    result.stdout.fnmatch_lines([
        "E   pocketmesh_testing.errors.CassetteMissError: cassette *test_summary.yaml (record mode 'none'*"
        "It differs in body $.messages[[]0].content: differs at character 289: "
        "recorded '...voir capacity for the board: Q1 2026' != sent '...voir capacity for the board: Q2 2026'.*",
        "    The test then failed with AssertionError: assert *",
        "FAILED test_user.py::test_summary - pocketmesh_testing.errors.CassetteMiss*",
    ])


SECRETS = {
    "userinfo": "pw-userinfo-3318", "query_upper": "query-secret-upper-77", "query_mixed": "query-secret-mixed-88",
    "json_api_key": "json-secret-api-11", "json_password": "json-secret-pw-22", "json_client": "json-secret-client-33",
    "json_nested": "json-secret-nested-44", "form_token": "form-secret-token-12", "form_secret": "form-secret-plain-34",
    "x_auth": "hdr-secret-auth-55", "apim": "hdr-secret-apim-66", "bearer": "sk-header-secret-91",
    "access": "tok-access-7f3a9c", "refresh": "tok-refresh-41b2d8", "cookie": "cookie-secret-5521",
}

SECRET_TESTS = """
import json, os
import httpx, pytest
from pocketmesh_testing.doubles.llm_replies import WireResponse
from pocketmesh_testing.doubles.loopback import LoopbackServer

PORT = {port}
S = {secrets!r}

def handler(method, path, headers, body):
    if path.startswith("/token"):
        answer = {{"access_token": S["access"], "refresh_token": S["refresh"], "token_type": "bearer"}}
    elif path.startswith("/whoami"):
        answer = {{"seen": "you sent " + headers.get("authorization", "")}}  # a key echoed back
    else:
        answer = {{"ok": True}}
    return WireResponse(200, {{"content-type": "application/json", "SET-COOKIE": f"session={{S['cookie']}}; HttpOnly"}},
                        [json.dumps(answer).encode()])

@pytest.fixture
def upstream():
    if os.environ.get("UPSTREAM") != "1":
        yield
        return
    server = LoopbackServer(handler, port=PORT)
    yield
    server.close()

@pytest.mark.llm_cassette
def test_secrets_everywhere(upstream):
    token = httpx.post(
        f"http://alice:{{S['userinfo']}}@127.0.0.1:{{PORT}}/token?API_KEY={{S['query_upper']}}&Key={{S['query_mixed']}}&region=eu",
        json={{"api_key": S["json_api_key"], "password": S["json_password"], "client_secret": S["json_client"],
               "nested": {{"Token": S["json_nested"]}}, "max_tokens": 128}},
        headers={{"X-Auth-Token": S["x_auth"], "Ocp-Apim-Subscription-Key": S["apim"]}})
    assert token.json()["token_type"] == "bearer"
    who = httpx.get(f"http://127.0.0.1:{{PORT}}/whoami", headers={{"Authorization": "Bearer " + S["bearer"]}})
    assert who.json()["seen"].startswith("you sent ")
    form = httpx.post(f"http://127.0.0.1:{{PORT}}/form", data={{"token": S["form_token"], "secret": S["form_secret"],
                                                               "user": "alice"}})
    assert form.json() == {{"ok": True}}
"""


def test_every_kind_of_secret_is_scrubbed_from_a_real_recording(pytester: pytest.Pytester,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_user=SECRET_TESTS.format(port=free_port(), secrets=SECRETS))
    monkeypatch.setenv("UPSTREAM", "1")
    pytester.runpytest_inprocess("-q").assert_outcomes(passed=1)
    text = (pytester.path / "cassettes" / "test_user" / "test_secrets_everywhere.yaml").read_text()
    leaked = {name: value for name, value in SECRETS.items() if value in text}
    assert not leaked, f"written to the cassette: {leaked}"
    assert "set-cookie" not in text.lower() and "x-auth-token" not in text.lower()
    # What is not secret stays, so the recording still reads (and matches) as what was sent.
    assert "region=eu" in text and '"max_tokens": 128' in text and "user=alice" in text and "bearer" in text
    assert text.count("redacted%3E") + text.count("<redacted>") == 12  # headers with secrets are dropped whole

    monkeypatch.delenv("UPSTREAM")  # replays offline, the live request scrubbed the same way to match
    pytester.runpytest_inprocess("-q", "--pocketmesh-record-mode=none").assert_outcomes(passed=1)


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
