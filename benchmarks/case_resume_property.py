"""Case 6: ``assert_resume_idempotent`` examples per second, and how its cost grows with flow size.

The flows are those of ``bench_resume_property.py``: a chain with a "skip" branch every four
nodes. Each check runs exactly ``EXAMPLES`` Hypothesis examples (``settings(max_examples=...)``);
each example interrupts the run at every step, so the cost of one example grows with the
number of nodes. Rows: examples/s on the 20-node flow (with and without a fake model call every
fourth node), the per-example cost at 10, 20 and 40 nodes, and the growth exponent
``log(t40 / t10) / log(4)`` (1: linear, 2: quadratic).

    python benchmarks/case_resume_property.py NODES MODEL EXAMPLES   (worker: prints {"examples", "seconds"})

``MODEL`` is ``none`` or ``fake`` (a FakeLLM call every fourth node).
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

NAME = "6. resume property"
EXAMPLES = 100
SIZES = (10, 20, 40)
ROUNDS = 3
TARGET_SECONDS = 1.0
"""Target: 100 examples on the 20-node flow within a second."""
TARGET_EXPONENT = 2.0
"""Target: the per-example cost grows no faster than quadratically with the number of nodes."""

Workload = tuple[int, str]
"""(nodes, model): one worker invocation's flow."""

WORKLOADS: tuple[Workload, ...] = (*((n, "none") for n in SIZES), (20, "fake"))


def measure(nodes: int, model: str, examples: int) -> dict[str, float]:
    """Run the property once on a ``nodes``-node flow; the examples run and the seconds taken."""
    from bench_resume_property import build, time_examples

    from pocketmesh_testing import FakeLLM

    if model == "none":
        count, seconds = time_examples(build(None, None, nodes), None, examples)
    elif model == "fake":
        fake = FakeLLM()
        try:
            count, seconds = time_examples(build(fake.openai_client(max_retries=0), 4, nodes), fake, examples)
        finally:
            fake.close()
    else:
        raise ValueError(f"model must be 'none' or 'fake', got {model!r}")
    return {"examples": count, "seconds": seconds}


def run(h: Any) -> list[Any]:
    """Alternate the workloads over ``ROUNDS`` rounds, each in a fresh subprocess; medians."""
    from _harness import Row, main_python, median, run_worker

    seconds: dict[Workload, list[float]] = {w: [] for w in WORKLOADS}
    per_example: dict[Workload, list[float]] = {w: [] for w in WORKLOADS}
    counts: dict[Workload, set[int]] = {w: set() for w in WORKLOADS}
    for r in range(ROUNDS):
        order = WORKLOADS[r % len(WORKLOADS):] + WORKLOADS[: r % len(WORKLOADS)]
        for nodes, model in order:
            out = run_worker(main_python(), "case_resume_property", str(nodes), model, str(EXAMPLES))
            w = (nodes, model)
            seconds[w].append(out["seconds"])
            per_example[w].append(out["seconds"] / out["examples"])
            counts[w].add(int(out["examples"]))

    def ran(w: Workload) -> str:
        return "/".join(str(c) for c in sorted(counts[w])) + " examples per check"

    rows = []
    base = (20, "none")
    for w, label in ((base, "no model"), ((20, "fake"), "FakeLLM call every 4th node")):
        rate = 1 / median(per_example[w])
        total = median(seconds[w])
        note = f"{ran(w)}, {total:.2f} s per check"
        if w == base:
            note += f" (target < {TARGET_SECONDS:.0f} s)"
        rates = [1 / t for t in per_example[w]]
        rows.append(Row(NAME, f"20 nodes, {EXAMPLES} examples", label, rate, "examples/s",
                        (1 / median(per_example[base])) / rate, note + "; ratio: no-model rate over this row's",
                        (min(rates), max(rates))))
    t10 = median(per_example[(SIZES[0], "none")])
    for nodes in SIZES:
        t = median(per_example[(nodes, "none")])
        samples = [x * 1e3 for x in per_example[(nodes, "none")]]
        rows.append(Row(NAME, "per-example cost, no model", f"{nodes} nodes", t * 1e3, "ms/example", t / t10,
                        f"{ran((nodes, 'none'))}; ratio: over {SIZES[0]} nodes", (min(samples), max(samples))))
    t40 = median(per_example[(SIZES[-1], "none")])
    exponent = math.log(t40 / t10) / math.log(SIZES[-1] / SIZES[0])
    verdict = "within" if exponent <= TARGET_EXPONENT else "over"
    rows.append(Row(NAME, "per-example cost, no model", f"growth {SIZES[0]} -> {SIZES[-1]} nodes", exponent,
                    "exponent", None, f"log(t{SIZES[-1]}/t{SIZES[0]})/log({SIZES[-1] // SIZES[0]}); "
                    f"{verdict} the quadratic target (<= {TARGET_EXPONENT:.0f})"))
    return rows


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]))))
