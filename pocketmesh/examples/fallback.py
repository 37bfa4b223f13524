"""A global fallback: any failure of the work node routes to a node that answers politely.

Serve with ``pocketmesh serve pocketmesh.examples.fallback:flows``.
"""

from __future__ import annotations

from typing import Any

from pocketmesh import Flow
from pocketmesh.a2a import A2ABaseNode


class DivideNode(A2ABaseNode):
    """Divides the two numbers of the message ("10 / 4"), or the data part's ``a`` and ``b``."""

    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> tuple[float, float]:
        data = self.get_incoming_data(shared)
        if isinstance(data, dict):
            return float(data["a"]), float(data["b"])
        left, _, right = str(shared.get("input", "")).partition("/")
        return float(left), float(right)

    async def execute(self, numbers: tuple[float, float], shared: dict[str, Any], params: dict[str, Any], attempt: int) -> float:
        return numbers[0] / numbers[1]

    async def finalize(self, shared: dict[str, Any], prep: Any, quotient: float, params: dict[str, Any]) -> str:
        self.set_final_response_parts(shared, [self.create_text_part(f"{quotient:g}")])
        return "complete"


class GlobalFallbackNode(A2ABaseNode):
    """Answers with an apology; the failure itself is in ``shared["__error"]``."""

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> str:
        shared["error"] = "An unexpected error occurred. Please try again."
        return str(shared["error"])

    async def finalize(self, shared: dict[str, Any], prep: Any, text: str, params: dict[str, Any]) -> str:
        self.set_final_response_parts(shared, [self.create_text_part(text)])
        return "default"


def build_flow() -> Flow:
    """The work node, with its ``"error"`` action wired to the fallback."""
    divide = DivideNode()
    divide.connect_action("error", GlobalFallbackNode())
    return Flow(divide, name="fallback")


flows = {"divide": build_flow()}
