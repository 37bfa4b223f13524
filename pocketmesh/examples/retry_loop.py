"""A loop with a bound: retry until the work succeeds or ``max_iterations`` is spent.

Serve with ``pocketmesh serve pocketmesh.examples.retry_loop:flows``.
"""

from __future__ import annotations

import random
from typing import Any

from pocketmesh import Flow
from pocketmesh.a2a import A2ABaseNode


class RetryLoopNode(A2ABaseNode):
    """One attempt per visit; routes back to itself until success or the iteration budget ends.

    Params: ``max_iterations`` (default 5) and ``success_rate`` (default 0.5; 1.0 always succeeds).
    """

    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> int:
        shared["iteration"] = int(shared.get("iteration", 0)) + 1
        return int(shared["iteration"])

    async def execute(self, iteration: int, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> str:
        if iteration > int(params.get("max_iterations", 5)):
            raise RuntimeError(f"max iterations exceeded ({iteration - 1} attempts)")
        return "success" if random.random() < float(params.get("success_rate", 0.5)) else "retry-needed"

    async def finalize(self, shared: dict[str, Any], iteration: int, result: str, params: dict[str, Any]) -> str:
        shared["result"] = result
        if result == "retry-needed" and iteration < int(params.get("max_iterations", 5)):
            return "loop-back"
        return "exit-loop"


class ReportNode(A2ABaseNode):
    """Says how the loop ended."""

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        outcome = "succeeded" if shared.get("result") == "success" else "gave up"
        self.set_final_response_parts(shared, [self.create_text_part(f"{outcome} after {shared['iteration']} iteration(s)")])
        return "complete"


def build_flow(max_iterations: int = 5) -> Flow:
    """The loop node wired to itself, and out to the report."""
    loop = RetryLoopNode().set_params({"max_iterations": max_iterations})
    loop - "loop-back" >> loop
    loop - "exit-loop" >> ReportNode()
    return Flow(loop, name="retry-loop")


flows = {"retry-loop": build_flow()}
