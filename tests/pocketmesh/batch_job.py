"""A BatchFlow job run in its own process by the resume tests: it may kill itself mid-batch.

    python batch_job.py DB RUN_ID EFFECTS MODE [CRASH]

``MODE`` is ``sequential`` or ``parallel`` (two passes at once); ``CRASH`` such as ``Write:3``
kills the process with SIGKILL when node Write starts for set 3. Every node appends one line,
``<node> <set>``, to the ``EFFECTS`` file as its side effect, so the test can count how often
each node ran for each set across processes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from pocketmesh import BaseNode, BatchFlow, SQLitePersistence

SETS = 6


class Step(BaseNode):
    """Writes its side effect in finalize; may kill the process as it starts."""

    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> None:
        if os.environ.get("BATCH_JOB_CRASH") == f"{self.name}:{params['n']}":
            os.kill(os.getpid(), signal.SIGKILL)
        # Yield once, so parallel passes interleave between prepare and finalize.
        await asyncio.sleep(0)

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> None:
        with open(os.environ["BATCH_JOB_EFFECTS"], "a", encoding="utf-8") as effects:
            effects.write(f"{self.name} {params['n']}\n")
        if self.name == "Write":
            shared.setdefault("written", []).append(params["n"])


class Numbers(BatchFlow):
    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"n": n} for n in range(SETS)]


def build(mode: str) -> Numbers:
    read, write = Step(name="Read"), Step(name="Write")
    read >> write
    batch = Numbers(read, name="Numbers")
    if mode == "parallel":
        batch.set_options(parallel=True, max_concurrency=2)
    return batch


async def main(db: str, run_id: str, mode: str) -> str:
    # shared=None: a new run starts empty, an interrupted one continues with its saved state.
    result = await build(mode).run(None, run_id=run_id, persistence=SQLitePersistence(db))
    return result.status


if __name__ == "__main__":
    database, run, effects_path, job_mode = sys.argv[1:5]
    os.environ["BATCH_JOB_EFFECTS"] = effects_path
    if len(sys.argv) > 5:
        os.environ["BATCH_JOB_CRASH"] = sys.argv[5]
    print(asyncio.run(main(database, run, job_mode)))
