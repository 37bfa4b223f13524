"""Examples per second of ``assert_resume_idempotent`` on a 20-node flow (a branch every 4 nodes).

    python benchmarks/bench_resume_property.py

``build`` and ``time_examples`` are shared with ``case_resume_property.py``.
"""

from __future__ import annotations

import time
from typing import Any

import openai
from hypothesis import settings

from pocketmesh import BaseNode, Flow
from pocketmesh_testing import FakeLLM
from pocketmesh_testing.properties import resume
from pocketmesh_testing.properties import assert_resume_idempotent


class Step(BaseNode):
    """Counts its visits in shared state; every fourth node asks the model."""

    def __init__(self, index: int, client: Any) -> None:
        super().__init__(name=f"N{index:02d}")
        self.index = index
        self.client = client

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> str:
        if self.client is None:
            return ""
        reply = await self.client.chat.completions.create(model="m", messages=[{"role": "user", "content": self.name}])
        return str(reply.choices[0].message.content)

    async def finalize(self, shared: dict[str, Any], prep: Any, result: str, params: dict[str, Any]) -> None:
        shared.setdefault("visits", []).append(self.name)


def build(client: Any, llm_every: int | None, size: int = 20) -> Flow:
    """A chain of ``size`` nodes, each fourth one also able to skip the next node (action "skip").

    With ``client`` and ``llm_every``, every ``llm_every``-th node calls the model through it.
    """
    nodes = [Step(i, client if llm_every and i % llm_every == 0 else None) for i in range(size)]
    for i, (a, b) in enumerate(zip(nodes, nodes[1:])):
        a >> b
        if i % 4 == 0 and i + 2 < len(nodes):
            a - "skip" >> nodes[i + 2]
    return Flow(nodes[0], name="Twenty" if size == 20 else f"Chain{size}")


def time_examples(flow: Flow, llm: Any, examples: int) -> tuple[int, float]:
    """Run ``assert_resume_idempotent`` with ``max_examples=examples``: (examples run, seconds)."""
    count = [0]
    original = resume.ResumeCheck.run

    async def counting(self: Any, *args: Any) -> Any:
        count[0] += 1
        return await original(self, *args)

    resume.ResumeCheck.run = counting  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        # The generated world includes model failures (HTTP 429/500...): a run that ends on one
        # is an accepted outcome here, as a flow without its own handling would declare it.
        expected = (openai.APIStatusError,) if llm is not None else ()
        assert_resume_idempotent(
            flow, llm=llm, expected_errors=expected, settings=settings(max_examples=examples, deadline=None)
        )
        elapsed = time.perf_counter() - start
    finally:
        resume.ResumeCheck.run = original  # type: ignore[method-assign]
    return count[0], elapsed


def measure(label: str, flow: Flow, llm: Any, examples: int) -> None:
    """Print examples per second for ``flow``."""
    count, elapsed = time_examples(flow, llm, examples)
    print(f"{label}: {count} examples in {elapsed:.2f}s = {count / elapsed:.1f} examples/s")


if __name__ == "__main__":
    measure("20 nodes, no model", build(None, None), None, 100)
    fake = FakeLLM()
    measure("20 nodes, model call every 4th node", build(fake.openai_client(max_retries=0), 4), fake, 100)
