"""Flows the reliability tests serve from real ``pocketmesh serve`` processes."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from pocketmesh import Flow
from pocketmesh.a2a import A2ABaseNode

STEP_DELAY_ENV = "POCKETMESH_TEST_STEP_DELAY"


def _delay() -> float:
    return float(os.environ.get(STEP_DELAY_ENV, "0.01"))


class Receive(A2ABaseNode):
    """Takes the turn's text into the log."""

    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> str:
        return str(shared.get("input", ""))

    async def execute(self, text: str, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> str:
        await asyncio.sleep(_delay())
        return text

    async def finalize(self, shared: dict[str, Any], prep: str, text: str, params: dict[str, Any]) -> None:
        shared.setdefault("inputs", []).append(text)
        shared.setdefault("log", []).append(f"receive:{text}")


class Weigh(A2ABaseNode):
    """Adds the text's length to a running total (a turn applied twice would count twice)."""

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> int:
        await asyncio.sleep(_delay())
        return len(str(shared.get("input", "")))

    async def finalize(self, shared: dict[str, Any], prep: Any, size: int, params: dict[str, Any]) -> None:
        shared["total"] = shared.get("total", 0) + size
        shared["log"].append(f"weigh:{size}")


class Tally(A2ABaseNode):
    """Counts turns."""

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> None:
        await asyncio.sleep(_delay())

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> None:
        shared["turns"] = shared.get("turns", 0) + 1
        shared["log"].append(f"tally:{shared['turns']}")


class Answer(A2ABaseNode):
    """Replies with what the state says, and ends the conversation on "bye"."""

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        text = str(shared.get("input", ""))
        reply = f"turn {shared['turns']}: {text} (total {shared['total']})"
        self.set_final_response_parts(shared, [self.create_text_part(reply)])
        shared["log"].append("answer")
        return "complete" if text == "bye" else "input-required"


def build_flow() -> Flow:
    """Receive -> Weigh -> Tally -> Answer, pausing after each answer and starting over."""
    receive, answer = Receive(), Answer()
    receive >> Weigh() >> Tally() >> answer
    answer - "input-required" >> receive
    return Flow(receive)


flows = {"steps": build_flow()}
