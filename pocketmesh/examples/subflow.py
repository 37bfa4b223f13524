"""Composing flows: a node that runs a reusable sub-flow on the same shared state.

Serve with ``pocketmesh serve pocketmesh.examples.subflow:flows``.
"""

from __future__ import annotations

from typing import Any

from pocketmesh import BaseNode, Flow
from pocketmesh.a2a import A2ABaseNode


class SubNode(BaseNode):
    """The reusable part: counts the words of the input into ``subResult``."""

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> None:
        shared["subResult"] = len(str(shared.get("input", "")).split())


class SubFlowNode(A2ABaseNode):
    """Runs ``sub_flow`` to the end inside its own ``execute`` and reports its result."""

    def __init__(self, sub_flow: Flow) -> None:
        super().__init__()
        self.sub_flow = sub_flow

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> Any:
        await self.sub_flow.run_lifecycle(shared, params)
        return shared.get("subResult")

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        shared["mainResult"] = result
        self.set_final_response_parts(shared, [self.create_text_part(f"{result} words")])
        return "default"


def build_flow() -> Flow:
    """The main flow, one node wrapping the sub-flow."""
    return Flow(SubFlowNode(Flow(SubNode(), name="count-words")), name="subflow")


flows = {"subflow": build_flow()}
