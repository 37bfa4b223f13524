"""Case 5: cassettes: loading one, and replaying a recorded LLM conversation through it.

A cassette of N distinct chat-completion interactions is written once, as pocketmesh records
it (its header line is a YAML comment to vcrpy); the same requests are then replayed through
``openai.OpenAI`` under pocketmesh's cassette layer (``use_llm_cassette``, record mode ``none``)
and under plain vcrpy matching on method, URL and body.

* load + replay, at 5 interactions (the usual cassette) and 200: milliseconds from opening
  the cassette (the file read and parsed) to the last reply;
* load alone, at 5, 50, 500 and 2,000 interactions, with the growth exponent. (Plain vcrpy's
  replay scans every recorded interaction per request: 2,000 take it minutes, so load + replay
  is not timed there.)

    python benchmarks/case_cassette.py replay|load SYSTEM CASSETTE N   (worker: prints ms)
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

NAME = "5. cassettes"
REPLAY_SIZES = (5, 200)
LOAD_SIZES = (5, 50, 500, 2000)
SYSTEMS = ("pocketmesh_testing cassettes", "plain vcrpy")
ROUNDS = 3
URL = "https://api.openai.com/v1/chat/completions"


def _body(i: int) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": f"question number {i}"}], "model": "gpt-4o-mini"}


def write_cassette(path: Path, n: int) -> None:
    """A vcrpy-format cassette of ``n`` distinct chat completions."""
    import yaml

    interactions = []
    for i in range(n):
        reply = {
            "id": f"chatcmpl-{i}", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": f"answer {i}"}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        }
        interactions.append({
            "request": {"body": json.dumps(_body(i)), "headers": {"content-type": ["application/json"]},
                        "method": "POST", "uri": URL},
            "response": {"status": {"code": 200, "message": "OK"},
                         "headers": {"content-type": ["application/json"]},
                         "body": {"string": json.dumps(reply)}},
        })
    from pocketmesh_testing.doubles.cassettes import CASSETTE_HEADER

    # As pocketmesh records it (its header line is a YAML comment to plain vcrpy).
    path.write_text(CASSETTE_HEADER + "\n" + yaml.safe_dump({"interactions": interactions, "version": 1}, sort_keys=False))


def _open(system: str, cassette: str) -> Any:
    if system.startswith("pocketmesh"):
        from pocketmesh_testing.doubles.cassettes import CassetteSettings, use_llm_cassette

        return use_llm_cassette(cassette, CassetteSettings(record_mode="none"))
    import vcr

    return vcr.VCR(record_mode="none", match_on=("method", "scheme", "host", "port", "path", "query", "body")).use_cassette(cassette)


def measure(mode: str, system: str, cassette: str, n: int) -> float:
    """``replay``: milliseconds to open the cassette and make all ``n`` requests in order (the
    median of the replays after a first, warm-up one); ``load``: to open it (the median of
    five opens after a first one)."""
    import openai

    client = openai.OpenAI(api_key="sk-bench", max_retries=0)
    _open(system, cassette).__enter__  # import the cassette layer before timing
    if mode == "load":
        times = []
        for _ in range(6):
            start = time.perf_counter()
            with _open(system, cassette):
                times.append(time.perf_counter() - start)
        return sorted(times[1:])[2] * 1000
    times = []
    for _ in range(4 if n <= 50 else 2):  # the first replay warms the openai client up: not counted
        start = time.perf_counter()
        with _open(system, cassette):
            for i in range(n):
                out = client.chat.completions.create(**_body(i))
                assert out.choices[0].message.content == f"answer {i}"
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:]) * 1000


def run(h: Any) -> list[Any]:
    from _harness import Row, alt_python, exponent, main_python, median, run_rounds, spread

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode, sizes in (("replay", REPLAY_SIZES), ("load", LOAD_SIZES)):
            cost: dict[str, list[float]] = {s: [] for s in SYSTEMS}
            for n in sizes:
                path = Path(tmp) / f"c{n}.yaml"
                if not path.exists():
                    write_cassette(path, n)
                jobs = {s: (main_python() if s.startswith("pocketmesh") else alt_python(), (mode, s, str(path), str(n))) for s in SYSTEMS}
                per = run_rounds(jobs, ROUNDS, "case_cassette")
                what = "load + replay" if mode == "replay" else "load"
                for system in SYSTEMS:
                    cost[system].append(median(per[system]))
                    ratio = median(per[system]) / median(per[SYSTEMS[1]])
                    rows.append(Row(NAME, f"{what}, {n:,} interactions", system, median(per[system]), "ms",
                                    ratio, "ratio: time over plain vcrpy", spread(per[system])))
            if mode == "load":
                for system in SYSTEMS:
                    rows.append(Row(NAME, f"load growth, {sizes[0]}-{sizes[-1]:,}", system,
                                    exponent(list(sizes), cost[system]), "exponent", None, "k in ms ~ interactions^k"))
    return rows


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))))
