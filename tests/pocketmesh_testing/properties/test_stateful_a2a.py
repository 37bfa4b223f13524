"""The A2A conversation machine: a correct agent passes; a gateway that re-stamps message ids is caught."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from pocketmesh import Flow
from pocketmesh.a2a import A2ABaseNode, create_a2a_app
from pocketmesh_testing.conversations.discovery import file_kind
from pocketmesh_testing.conversations.format import load_scenarios
from pocketmesh_testing.properties.stateful import a2a_conversation_machine

os.environ.setdefault("OTEL_INSTRUMENTATION_A2A_SDK_ENABLED", "false")

# The explain phase re-runs failing cases under a tracer; too slow for HTTP round trips.
FAST = settings(settings.get_profile("dev"), max_examples=8, stateful_step_count=6, report_multiple_bugs=False,
                phases=[p for p in Phase if p != Phase.explain])


class Collect(A2ABaseNode):
    """Keeps every input; asks for more until the user says bye."""

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        shared.setdefault("seen", []).append(shared.get("input"))
        self.set_final_response_parts(shared, [self.create_text_part(f"seen {len(shared['seen'])}")])
        return "complete" if shared.get("input") == "bye" else "input-required"


def flows() -> dict[str, Flow]:
    return {"collect": Flow(Collect())}


def test_a_correct_agent_keeps_every_invariant() -> None:
    run_state_machine_as_test(a2a_conversation_machine(flows()), settings=FAST)


def restamping_gateway(flows: Any, persistence: Any) -> Any:
    """Planted bug: a gateway that gives every message a fresh messageId, so repeats look new."""
    app = create_a2a_app(flows, persistence=persistence)

    async def gateway(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        data = json.loads(body)
        message = (data.get("params") or {}).get("message")
        if isinstance(message, dict):
            message["messageId"] = str(uuid.uuid4())
        rewritten = json.dumps(data).encode()
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        headers.append((b"content-length", str(len(rewritten)).encode()))
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.Event().wait()  # the client stays connected while the answer streams
            sent = True
            return {"type": "http.request", "body": rewritten, "more_body": False}

        await app({**scope, "headers": headers}, replay, send)

    return gateway


def test_history_duplicated_on_redelivery_is_found(tmp_path: Path) -> None:
    machine = a2a_conversation_machine(flows(), app_factory=restamping_gateway, agent_ref="tests.agent:flows",
                                       failures_dir=tmp_path)
    with pytest.raises(AssertionError, match="redelivering message .* changed task") as caught:
        run_state_machine_as_test(machine, settings=settings(FAST, max_examples=30))
    assert "messages 2 -> 4" in str(caught.value)
    kept = next(tmp_path.glob("*.yaml"))
    saved = yaml.safe_load(kept.read_text())
    # A scenario file as the plugin and `pocketmesh replay` read it.
    assert file_kind(kept) == "scenario" and [t.message_id for t in load_scenarios(kept)[0].turns] == ["m1", "m1"]
    assert saved["agent"] == "tests.agent:flows" and saved["skill"] == "collect"
    assert len(saved["turns"]) == 2  # shrunk: one message, then its redelivery (the same message id)
    assert saved["turns"][0]["message_id"] == saved["turns"][1]["message_id"] == "m1"
    assert saved["turns"][0]["user"] == saved["turns"][1]["user"]
