"""Case 3: A2A round trips in-process, pocketmesh against the bare a2a-sdk on its own stores.

From ``a2a_inprocess.py roundtrip``: a new task per ``message/send``, answered ``completed``,
over httpx's ASGI transport. pocketmesh on ``InMemoryPersistence`` is paired with the SDK on its
own ``InMemoryTaskStore``, pocketmesh on ``SQLitePersistence`` with the SDK on its own
``DatabaseTaskStore`` over SQLite (SQLAlchemy + aiosqlite). Each figure: round trips per second
over 2 s in a fresh process, median of the rounds. (``a2a_roundtrip.py`` measures the same over
real sockets, uvicorn in its own process.)
"""

from __future__ import annotations

from typing import Any

NAME = "3. A2A round trips"
SECONDS = "2"
ROUNDS = 5
PAIRS = {
    "pocketmesh memory": "SDK InMemoryTaskStore",
    "pocketmesh SQLite": "SDK DatabaseTaskStore (SQLite)",
}


def run(h: Any) -> list[Any]:
    from _harness import Row, alt_python, main_python, median, run_rounds, spread

    systems = [s for pair in PAIRS.items() for s in pair]
    jobs = {s: (main_python() if s.startswith("pocketmesh") else alt_python(), ("roundtrip", s, SECONDS)) for s in systems}
    per = run_rounds(jobs, ROUNDS, "a2a_inprocess")
    rows = []
    for ours, theirs in PAIRS.items():
        for system in (ours, theirs):
            ratio = median(per[ours]) / median(per[theirs]) if system == ours else 1.0
            rows.append(Row(NAME, "in-process, new task per message", system, median(per[system]), "round trips/s",
                            ratio, f"ratio: round trips/s over {theirs}" if system == ours else "", spread(per[system])))
    return rows
