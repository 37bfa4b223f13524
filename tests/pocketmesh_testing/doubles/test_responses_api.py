"""The fake LLM over the OpenAI Responses API, as a user meets it: the real openai SDK's
``client.responses`` against the same scripted replies as chat completions."""

from __future__ import annotations

import pytest

SDK_TESTS = """
import json

import openai
import pytest
from pydantic import BaseModel

from pocketmesh_testing import ReplyMismatchError


class Weather(BaseModel):
    city: str
    celsius: int


WEATHER_TOOL = {"type": "function", "name": "get_weather", "strict": False,
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


async def test_plain(fake_llm):
    fake_llm.reply("Paris")
    client = fake_llm.openai_client()
    response = await client.responses.create(model="gpt-test", instructions="Be brief.",
                                             input="Capital of France?")
    assert response.output_text == "Paris"
    assert response.status == "completed" and response.model == "gpt-test"
    (message,) = response.output
    assert (message.type, message.role, message.content[0].type) == ("message", "assistant", "output_text")
    call = fake_llm.calls[0]
    assert (call.path, call.dialect, call.model) == ("/v1/responses", "responses", "gpt-test")
    assert call.input == "Capital of France?" and call.instructions == "Be brief."
    assert call.messages == [{"role": "user", "content": "Capital of France?"}]
    assert call.body["instructions"] == "Be brief." and not call.stream


async def test_stream(fake_llm):
    fake_llm.reply_stream(["Pa", "ri", "s"])
    client = fake_llm.openai_client()
    stream = await client.responses.create(
        model="m", input=[{"role": "user", "content": "Capital of France?"}], stream=True)
    events = [event async for event in stream]
    assert [e.type for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.content_part.added", "response.output_text.delta", "response.output_text.delta",
        "response.output_text.delta", "response.output_text.done", "response.content_part.done",
        "response.output_item.done", "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [e.delta for e in events if e.type == "response.output_text.delta"] == ["Pa", "ri", "s"]
    assert events[-1].response.output_text == "Paris"
    assert fake_llm.calls[0].stream and fake_llm.calls[0].messages[-1]["content"] == "Capital of France?"


async def test_the_stream_helper_accumulates_the_events(fake_llm):
    fake_llm.reply_stream(["Hel", "lo"]).reply_tool_call("get_weather", {"city": "Oslo"})
    client = fake_llm.openai_client()
    async with client.responses.stream(model="m", input="hi") as stream:
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert deltas == ["Hel", "lo"] and final.output_text == "Hello"
    async with client.responses.stream(model="m", input="weather?", tools=[WEATHER_TOOL]) as stream:
        final = await stream.get_final_response()
    assert final.output[0].type == "function_call"
    assert json.loads(final.output[0].arguments) == {"city": "Oslo"}


async def test_function_call(fake_llm):
    fake_llm.reply_tool_call("get_weather", {"city": "Oslo"}, call_id="call_1")
    fake_llm.reply_tool_call("get_weather", {"city": "Rome"})
    client = fake_llm.openai_client()
    response = await client.responses.create(model="m", input="Weather in Oslo?", tools=[WEATHER_TOOL])
    (call,) = response.output
    assert (call.type, call.name, call.call_id, call.status) == ("function_call", "get_weather", "call_1", "completed")
    assert isinstance(call.arguments, str) and json.loads(call.arguments) == {"city": "Oslo"}
    assert response.output_text == ""
    stream = await client.responses.create(model="m", input="Rome?", tools=[WEATHER_TOOL], stream=True)
    events = [event async for event in stream]
    added = next(e for e in events if e.type == "response.output_item.added")
    assert (added.item.type, added.item.arguments) == ("function_call", "")
    (delta,) = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert json.loads(delta) == {"city": "Rome"}
    assert events[-1].response.output[0].call_id == added.item.call_id
    assert fake_llm.calls[0].body["tools"][0]["name"] == "get_weather"


async def test_function_call_output_goes_back_as_input(fake_llm):
    fake_llm.reply_tool_call("get_weather", {"city": "Oslo"}, call_id="call_9").reply("3 degrees in Oslo.")
    client = fake_llm.openai_client()
    first = await client.responses.create(model="m", input="Weather?", tools=[WEATHER_TOOL])
    call = first.output[0]
    items = [{"role": "user", "content": "Weather?"}, call.model_dump(exclude_none=True),
             {"type": "function_call_output", "call_id": call.call_id, "output": "3"}]
    second = await client.responses.create(model="m", input=items, tools=[WEATHER_TOOL])
    assert second.output_text == "3 degrees in Oslo."
    sent = fake_llm.calls[1]
    assert [item.get("type") for item in sent.input] == [None, "function_call", "function_call_output"]
    assert sent.messages == [{"role": "user", "content": "Weather?"}]


async def test_structured_output(fake_llm):
    fake_llm.reply(json.dumps({"city": "Oslo", "celsius": 3}))
    fake_llm.reply_stream(['{"city": "Ro', 'me", "celsius": 18}'])
    client = fake_llm.openai_client()
    parsed = await client.responses.parse(model="m", input="Weather?", text_format=Weather)
    assert parsed.output_parsed == Weather(city="Oslo", celsius=3)
    fmt = fake_llm.calls[0].body["text"]["format"]
    assert (fmt["type"], fmt["name"]) == ("json_schema", "Weather")
    assert parsed.text.format.type == "json_schema"  # the request's format, echoed
    async with client.responses.stream(model="m", input="Rome?", text_format=Weather) as stream:
        final = await stream.get_final_response()
    assert final.output_parsed == Weather(city="Rome", celsius=18)


async def test_structured_output_needs_a_reply_that_fits(fake_llm):
    fake_llm.reply("sunny").reply(json.dumps({"city": "Oslo"}))
    client = fake_llm.openai_client()
    with pytest.raises(ReplyMismatchError, match="structured output .text.format json_schema 'Weather'. "
                                                 "but the scripted reply 'sunny' is not JSON"):
        await client.responses.parse(model="m", input="Weather?", text_format=Weather)
    with pytest.raises(ReplyMismatchError, match="lacks 'celsius'"):
        await client.responses.parse(model="m", input="Weather?", text_format=Weather)


async def test_respond_with_and_failures(fake_llm):
    fake_llm.fail(status=429).respond_with(lambda call: "echo: " + call.messages[-1]["content"], times=1)
    fake_llm.reply("cut short", finish_reason="length")
    client = fake_llm.openai_client()
    answer = await client.responses.create(model="m", input="hello")
    assert answer.output_text == "echo: hello" and len(fake_llm.calls) == 2  # the SDK retried the 429
    short = await client.responses.create(model="m", input="long story")
    assert short.status == "incomplete" and short.incomplete_details.reason == "max_output_tokens"


async def test_over_loopback(fake_llm):
    fake_llm.reply_stream(["over ", "http"]).reply("not json")
    client = openai.AsyncOpenAI(api_key="k", base_url=fake_llm.base_url)
    stream = await client.responses.create(model="m", input="q", stream=True)
    assert [e.delta async for e in stream if e.type == "response.output_text.delta"] == ["over ", "http"]
    with pytest.raises(openai.BadRequestError, match="is not JSON"):
        await client.responses.parse(model="m", input="Weather?", text_format=Weather)
    assert fake_llm.calls[0].headers["authorization"] == "Bearer k"


def test_sync_client(fake_llm):
    fake_llm.reply("sync")
    assert fake_llm.sync_openai_client().responses.create(model="m", input="q").output_text == "sync"
"""


def test_the_responses_api_with_the_openai_sdk(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=SDK_TESTS)
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(passed=10)


def test_an_unscripted_responses_call_names_the_request(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="""
        async def test_forgot(fake_llm):
            await fake_llm.openai_client().responses.create(model="gpt-test", input="What is 2+2?")
    """)
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*UnscriptedCallError: fake_llm got a request with nothing scripted to answer it: "
        "POST /v1/responses, model='gpt-test', 1 message(s), last user: 'What is 2+2?'*",
    ])
