"""Case 7: turn cost against conversation length (growth), ``historyLength: 1``.

From ``a2a_inprocess.py turns``: one task, a turn after another, each pausing for input; the
turn at length L is timed when the task already holds L turns (median of 9 turns from there).
pocketmesh on ``InMemoryPersistence`` is paired with the SDK on its own ``InMemoryTaskStore``,
pocketmesh on ``SQLitePersistence`` with the SDK on its own ``DatabaseTaskStore`` (SQLite); the
SQLite rows also give the ratio to the SDK in memory. The exponent row fits cost ~ L^k over the
lengths (0: a turn costs the same however long the conversation).
"""

from __future__ import annotations

from typing import Any

NAME = "7. turn cost vs conversation"
LENGTHS = (1, 10, 100, 500)
ROUNDS = 3
PAIRS = {
    "pocketmesh memory": "SDK InMemoryTaskStore",
    "pocketmesh SQLite": "SDK DatabaseTaskStore (SQLite)",
}


def run(h: Any) -> list[Any]:
    from _harness import Row, alt_python, exponent, main_python, median, run_rounds, spread

    systems = ["pocketmesh memory", "SDK InMemoryTaskStore", "pocketmesh SQLite", "SDK DatabaseTaskStore (SQLite)"]
    jobs = {s: (main_python() if s.startswith("pocketmesh") else alt_python(), ("turns", s, *map(str, LENGTHS))) for s in systems}
    per = run_rounds(jobs, ROUNDS, "a2a_inprocess")
    cost = {s: {n: median([r[str(n)] for r in per[s]]) for n in LENGTHS} for s in systems}
    rows = []
    for n in LENGTHS:
        for system in systems:
            values = [r[str(n)] for r in per[system]]
            theirs = PAIRS.get(system)
            ratio, note = None, ""
            if theirs is not None:
                ratio = cost[system][n] / cost[theirs][n]
                note = f"ratio: time over {theirs}"
                if theirs != "SDK InMemoryTaskStore":
                    note += f"; {cost[system][n] / cost['SDK InMemoryTaskStore'][n]:.2f}x the SDK in memory"
            rows.append(Row(NAME, f"turn {n}", system, cost[system][n], "ms/turn", ratio, note, spread(values)))
    for system in systems:
        k = exponent(list(LENGTHS), [cost[system][n] for n in LENGTHS])
        rows.append(Row(NAME, "growth, turns 1-500", system, k, "exponent", None, "k in ms/turn ~ L^k"))
    return rows
