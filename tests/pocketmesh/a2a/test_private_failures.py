"""A node's exception text stays on the server: clients get a generic failure with an error id,
the log has the traceback under that id; ``expose_errors`` shows the text, for development."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import httpx
import pytest

from pocketmesh import BaseNode, Flow, InMemoryPersistence, load_run_record
from pocketmesh.a2a import create_a2a_client
from pocketmesh.cli import build_app

from .conftest import CollectNode, EchoNode, serving, text_message

SECRET = "hunter2"


class LeakyNode(BaseNode):
    """Fails with a secret in its exception text."""

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> None:
        raise ValueError(f"secret db password={SECRET} leaked in message")


def flows() -> dict[str, Any]:
    return {"leaky": Flow(LeakyNode()), "echo": Flow(EchoNode())}


def error_id_in(text: str) -> str:
    found = re.search(r"error id ([0-9a-f]{12})", text)
    assert found, f"no error id in {text!r}"
    return found.group(1)


def failure_records(caplog: pytest.LogCaptureFixture, error_id: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("pocketmesh") and error_id in r.getMessage()]


async def test_the_secret_reaches_neither_the_reply_nor_the_task_nor_the_stream_but_the_log_has_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="pocketmesh")
    async with serving(flows()) as served:
        async with await create_a2a_client(served.base_url) as client:
            reply = await client.send_message("x", skill="leaky")
            stored = await client.get_task(reply.task_id, history_length=10)
            events = [e async for e in client.send_message_stream("y", skill="leaky")]
        async with httpx.AsyncClient(timeout=10) as http:
            raw_send = await http.post(
                served.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "message/send",
                                      "params": {"message": text_message("z", skill="leaky")}},
            )
            raw_get = await http.post(
                served.rpc_url, json={"jsonrpc": "2.0", "id": 2, "method": "tasks/get", "params": {"id": reply.task_id}},
            )
            raw_stream = await http.post(
                served.rpc_url, json={"jsonrpc": "2.0", "id": 3, "method": "message/stream",
                                      "params": {"message": text_message("w", skill="leaky")}},
            )
        record = await load_run_record(served.persistence, reply.task_id)

    assert reply.state == "failed" and stored.state == "failed"
    error_id = error_id_in(reply.text)
    assert error_id_in(stored.text) == error_id
    seen_by_client = [
        reply.text, stored.text, json.dumps(stored.history), *(e.text for e in events),
        raw_send.text, raw_get.text, raw_stream.text,
    ]
    assert all(SECRET not in text and "ValueError" not in text for text in seen_by_client)
    assert events[-1].state == "failed" and error_id_in(events[-1].text) != error_id

    logged = failure_records(caplog, error_id)
    assert len(logged) == 1
    assert logged[0].levelno == logging.ERROR and logged[0].exc_info is not None
    assert SECRET in logged[0].getMessage()
    traceback_text = caplog.handler.format(logged[0])
    assert "Traceback" in traceback_text and "in execute" in traceback_text and SECRET in traceback_text
    # The run record keeps the real error, under the same id, for `pocketmesh runs show`.
    assert record is not None and record.error is not None
    assert record.error["id"] == error_id and SECRET in record.error["message"]


async def test_expose_errors_sends_the_exception_text() -> None:
    async with serving(flows(), expose_errors=True) as served:
        async with await create_a2a_client(served.base_url) as client:
            reply = await client.send_message("x", skill="leaky")
            events = [e async for e in client.send_message_stream("y", skill="leaky")]
    assert reply.state == "failed"
    assert f"ValueError: secret db password={SECRET} leaked in message" in reply.text
    assert SECRET in events[-1].text
    error_id_in(reply.text)


async def test_serve_expose_errors_reaches_the_app() -> None:
    target = {"leaky": Flow(LeakyNode())}
    private = build_app(target, "m:flows", host="127.0.0.1", port=4000, name=None, db=None, persistence=None)
    exposed = build_app(target, "m:flows", host="127.0.0.1", port=4000, name=None, db=None, expose_errors=True)
    texts = []
    for app in (private, exposed):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://agent.test", timeout=10) as http:
            response = await http.post("/a2a", json={"jsonrpc": "2.0", "id": 1, "method": "message/send",
                                                     "params": {"message": text_message("x")}})
        texts.append(response.text)
    assert SECRET not in texts[0] and "error id" in texts[0]
    assert SECRET in texts[1]


def test_serve_refuses_expose_errors_for_an_app_it_does_not_build() -> None:
    def app(scope: Any, receive: Any, send: Any) -> None: ...

    with pytest.raises(ValueError, match="--expose-errors"):
        build_app(app, "m:app", host="127.0.0.1", port=4000, name=None, db=None, expose_errors=True)


def test_serve_has_the_expose_errors_flag() -> None:
    from pocketmesh.cli import build_parser

    args = build_parser().parse_args(["serve", "m:flows", "--expose-errors"])
    assert args.expose_errors is True
    assert build_parser().parse_args(["serve", "m:flows"]).expose_errors is False


async def test_an_error_before_the_flow_runs_is_private_too(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="pocketmesh")
    async with serving({"collect": Flow(CollectNode())}) as served:
        async with await create_a2a_client(served.base_url) as client:
            first = await client.send_message("x")
            assert first.state == "input-required"
            # The run's record is damaged: continuing the task fails before the flow runs, with
            # a message that quotes the record.
            await served.persistence.save_run(first.task_id, {"password": SECRET}, {})
            reply = await client.send_message("again", task_id=first.task_id)
    assert reply.state == "failed"
    assert SECRET not in reply.text
    logged = failure_records(caplog, error_id_in(reply.text))
    assert len(logged) == 1 and SECRET in logged[0].getMessage() and logged[0].exc_info is not None


def test_the_failure_message_names_neither_the_exception_nor_its_text() -> None:
    from pocketmesh.a2a.executor import PocketMeshAgentExecutor

    executor = PocketMeshAgentExecutor({"x": Flow(LeakyNode())}, InMemoryPersistence())
    text = executor._failure_text({"type": "ValueError", "message": SECRET, "id": "0123456789ab"})
    assert SECRET not in text and "ValueError" not in text and "0123456789ab" in text
