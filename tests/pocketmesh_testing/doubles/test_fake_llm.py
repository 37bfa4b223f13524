"""The fake_llm fixture as a user meets it: the real openai SDK against a scripted model."""

from __future__ import annotations

import asyncio

import pytest

from pocketmesh_testing import FakeLLM, UnscriptedCallError, UnusedRepliesError

SDK_TESTS = """
import json

async def test_plain(fake_llm):
    fake_llm.reply("Paris")
    client = fake_llm.openai_client()
    answer = await client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "Capital of France?"}])
    assert answer.choices[0].message.content == "Paris"
    assert fake_llm.calls[0].messages[-1]["content"] == "Capital of France?"
    assert fake_llm.calls[0].model == "gpt-test"

async def test_stream(fake_llm):
    fake_llm.reply_stream(["Pa", "ris"])
    client = fake_llm.openai_client()
    stream = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "q"}], stream=True)
    pieces = [c.choices[0].delta.content async for c in stream if c.choices[0].delta.content]
    assert pieces == ["Pa", "ris"]

async def test_tool_call(fake_llm):
    fake_llm.reply_tool_call("get_weather", {"city": "Oslo"})
    client = fake_llm.openai_client()
    answer = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}])
    call = answer.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    assert answer.choices[0].finish_reason == "tool_calls"

async def test_rate_limited_then_success(fake_llm):
    fake_llm.fail(status=429).reply("after retry")
    client = fake_llm.openai_client()
    answer = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}])
    assert answer.choices[0].message.content == "after retry"
    assert len(fake_llm.calls) == 2

async def test_rate_limit_without_retries(fake_llm):
    import openai, pytest
    fake_llm.fail(status=429, message="slow down", retry_after=2)
    client = fake_llm.openai_client(max_retries=0)
    with pytest.raises(openai.RateLimitError, match="slow down") as info:
        await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}])
    assert info.value.response.headers["retry-after"] == "2"

async def test_respond_with(fake_llm):
    fake_llm.respond_with(lambda call: "echo: " + call.messages[-1]["content"])
    client = fake_llm.openai_client()
    for word in ("a", "b"):
        answer = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": word}])
        assert answer.choices[0].message.content == "echo: " + word

async def test_loopback_base_url(fake_llm):
    import openai
    fake_llm.reply("over http").reply_stream(["x", "y"])
    client = openai.AsyncOpenAI(api_key="k", base_url=fake_llm.base_url)
    answer = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}])
    assert answer.choices[0].message.content == "over http"
    stream = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "q"}], stream=True)
    assert [c.choices[0].delta.content async for c in stream if c.choices[0].delta.content] == ["x", "y"]
    assert fake_llm.calls[0].headers["authorization"] == "Bearer k"

def test_sync_client(fake_llm):
    fake_llm.reply("sync")
    answer = fake_llm.sync_openai_client().chat.completions.create(
        model="m", messages=[{"role": "user", "content": "q"}])
    assert answer.choices[0].message.content == "sync"
"""


def test_fake_llm_with_the_openai_sdk(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=SDK_TESTS)
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(passed=8)


def test_unscripted_call_fails_naming_the_request(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user="""
        async def test_forgot_to_script(fake_llm):
            client = fake_llm.openai_client()
            await client.chat.completions.create(
                model="gpt-test", messages=[{"role": "user", "content": "What is 2+2?"}])
        """
    )
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*UnscriptedCallError: fake_llm got a request with nothing scripted to answer it: "
        "POST /v1/chat/completions, model='gpt-test', 1 message(s), last user: 'What is 2+2?'*",
    ])
    assert "errors" not in result.stdout.lines[-1]  # no second report from teardown


def test_unused_reply_fails_at_teardown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user="""
        async def test_scripts_too_much(fake_llm):
            fake_llm.reply("used").reply("never used").fail(status=500)
            client = fake_llm.openai_client()
            await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        """
    )
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*UnusedRepliesError: 2 scripted fake_llm answer(s) were never requested: "
        "reply('never used'), fail(status=500). Requests made (1): POST /v1/chat/completions*",
    ])


def test_swallowed_unscripted_call_still_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user="""
        async def test_swallows(fake_llm):
            try:
                await fake_llm.openai_client().chat.completions.create(model="m", messages=[])
            except Exception:
                pass
        """
    )
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*UnscriptedCallError: fake_llm got 1 request(s) with nothing scripted*"])


def test_fake_llm_outside_pytest() -> None:
    fake = FakeLLM().reply("one")

    async def ask() -> str:
        answer = await fake.openai_client().chat.completions.create(model="m", messages=[])
        return str(answer.choices[0].message.content)

    assert asyncio.run(ask()) == "one"
    fake.verify()
    with pytest.raises(UnscriptedCallError):
        asyncio.run(ask())
    fake.reset()
    fake.reply("left over")
    with pytest.raises(UnusedRepliesError, match="reply\\('left over'\\)"):
        fake.verify()


def test_anthropic_messages_dialect() -> None:
    import httpx

    fake = FakeLLM().reply("bonjour").reply_tool_call("lookup", {"q": 1}).reply_stream(["a", "b"])
    with httpx.Client(transport=fake.httpx_transport(), base_url="http://fake") as client:
        text = client.post("/v1/messages", json={"model": "claude", "messages": []}).json()
        tool = client.post("/v1/messages", json={"model": "claude", "messages": []}).json()
        stream = client.post("/v1/messages", json={"model": "claude", "messages": [], "stream": True})
    assert text["content"] == [{"type": "text", "text": "bonjour"}]
    assert tool["content"][0] == {"type": "tool_use", "id": tool["content"][0]["id"], "name": "lookup",
                                  "input": {"q": 1}}
    assert "event: content_block_delta" in stream.text and '"text": "b"' in stream.text


def test_respx_routing() -> None:
    import httpx
    import respx

    fake = FakeLLM().reply("via respx")
    with respx.mock(assert_all_called=False) as router:
        fake.route_respx(router, "https://model.invalid/v1")
        body = httpx.post("https://model.invalid/v1/chat/completions",
                          json={"model": "m", "messages": []}).json()
    assert body["choices"][0]["message"]["content"] == "via respx"


def test_a_closed_fake_drops_kept_alive_connections() -> None:
    """A client that kept a connection to a closed fake reaches the next fake on that port."""
    import httpx

    from pocketmesh_testing import FakeLLM
    from pocketmesh_testing.doubles.loopback import free_port

    port = free_port()
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(transport=httpx.HTTPTransport(retries=1)) as client:
        first = FakeLLM(port=port)
        first.reply("from the first")
        answer = client.post(f"{first.base_url}/chat/completions", json=body).json()
        assert answer["choices"][0]["message"]["content"] == "from the first"
        first.close()
        second = FakeLLM(port=port)
        second.reply("from the second")
        try:
            answer = client.post(f"{second.base_url}/chat/completions", json=body).json()
        finally:
            second.close()
        assert answer["choices"][0]["message"]["content"] == "from the second"
        assert len(first.calls) == 1 and len(second.calls) == 1


def test_a_streamed_reply_for_a_plain_call_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user="""
        import openai, pytest
        from pocketmesh_testing import ReplyMismatchError

        async def test_in_process(fake_llm):
            fake_llm.reply_stream(["Pa", "ris"])
            with pytest.raises(ReplyMismatchError):
                await fake_llm.openai_client().chat.completions.create(model="m", messages=[])

        async def test_over_http(fake_llm):
            fake_llm.reply_stream(["Pa", "ris"])
            client = openai.AsyncOpenAI(api_key="k", base_url=fake_llm.base_url, max_retries=0)
            await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "capital?"}])
        """
    )
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(passed=1, failed=1, errors=1)  # a caught mismatch still fails at teardown
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_in_process*",
                                 "*ReplyMismatchError: fake_llm: reply_stream([[]'Pa', 'ris'[]]) scripts a streamed*"])
    result.stdout.fnmatch_lines([
        "*BadRequestError: *fake_llm: reply_stream([[]'Pa', 'ris'[]]) scripts a streamed answer, but the request is "
        "not streamed (stream=True not set): POST /v1/chat/completions*Script reply('...') for a plain call*",
    ])
