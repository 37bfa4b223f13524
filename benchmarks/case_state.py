"""Case 8: step cost against state size, and what a backend keeps per step.

From ``state_growth.py``: a 1,000-step self-loop that adds 1 to a counter, every step
checkpointed, beside 1 KB, 100 KB or 1 MB of JSON the node never touches. pocketmesh on
``InMemoryPersistence`` and on ``SQLitePersistence`` (``NORMAL``); LangGraph's SQLite
checkpointer (``NORMAL``, ``durability="sync"``) for reference. The ratio column is each
size's cost over the same system's 1 KB cost (target: at most 3x at 1 MB); the exponent row
fits cost ~ size^k.

Memory per step: after a 20,000-step run (its result dropped), the bytes the backend keeps per
step: the Python heap the in-memory store holds (``tracemalloc``), and what the SQLite file
(WAL checkpointed) grew by.
"""

from __future__ import annotations

from typing import Any

NAME = "8. step cost vs state"
SIZES = (1_000, 100_000, 1_000_000)
ROUNDS = 3
SYSTEMS = {"pocketmesh memory": ("pocketmesh", "memory"), "pocketmesh SQLite": ("pocketmesh", "sqlite"),
           "LangGraph SQLite": ("LangGraph", "sqlite")}
KEPT_STEPS = "20000"


def run(h: Any) -> list[Any]:
    from _harness import Row, alt_python, exponent, main_python, median, run_rounds, spread

    jobs = {}
    for name, (system, backend) in SYSTEMS.items():
        python = alt_python() if system == "LangGraph" else main_python()
        for size in SIZES:
            jobs[f"{name}|{size}"] = (python, ("steps", system, backend, str(size), "1" if system == "LangGraph" else "3"))
    per = run_rounds(jobs, ROUNDS, "state_growth")
    rows = []
    for name in SYSTEMS:
        costs = [median(per[f"{name}|{size}"]) for size in SIZES]
        for size, cost in zip(SIZES, costs):
            rows.append(Row(NAME, f"state {size // 1000:,} KB", name, cost, "us/step", cost / costs[0],
                            "ratio: over this system's 1 KB step", spread(per[f"{name}|{size}"])))
        rows.append(Row(NAME, "growth, 1 KB-1 MB", name, exponent(list(SIZES), costs), "exponent", None, "k in us/step ~ bytes^k"))
    kept = run_rounds({b: (main_python(), ("memory", b, KEPT_STEPS)) for b in ("memory", "sqlite")}, ROUNDS, "state_growth")
    for backend, label in (("memory", "InMemoryPersistence (heap)"), ("sqlite", "SQLitePersistence (file)")):
        value = median(kept[backend])
        rows.append(Row(NAME, f"kept per step, {int(KEPT_STEPS):,} steps", label, value, "bytes/step",
                        value / median(kept["sqlite"]), "ratio: over SQLite's", spread(kept[backend])))
    return rows
