"""Case 5: replaying a recorded LLM conversation through the openai SDK, requests per second.

A cassette of N distinct chat-completion interactions is written once; the same requests are
then replayed through ``openai.OpenAI`` under pocketmesh's cassette layer
(``pocketmesh_testing.doubles.cassettes.use_llm_cassette``, record mode ``none``) and under plain
vcrpy matching on method, URL and body. At 200 and 400 interactions, to show how replay cost
grows with cassette size.

    python benchmarks/case_cassette.py SYSTEM CASSETTE N   (worker: prints requests per second)
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

NAME = "5. cassette replay"
SIZES = (200, 400)
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


def measure(system: str, cassette: str, n: int) -> float:
    """Requests per second replaying all ``n`` interactions in the order they were recorded."""
    import openai

    client = openai.OpenAI(api_key="sk-bench", max_retries=0)
    order = range(n)

    def replay() -> None:
        for i in order:
            out = client.chat.completions.create(**_body(i))
            assert out.choices[0].message.content == f"answer {i}"

    if system.startswith("pocketmesh"):
        from pocketmesh_testing.doubles.cassettes import CassetteSettings, use_llm_cassette

        context = use_llm_cassette(cassette, CassetteSettings(record_mode="none"))
    else:
        import vcr

        context = vcr.VCR(record_mode="none", match_on=("method", "scheme", "host", "port", "path", "query", "body")).use_cassette(cassette)
    with context:
        start = time.perf_counter()
        replay()
        return n / (time.perf_counter() - start)


def run(h: Any) -> list[Any]:
    from _harness import Row, alt_python, main_python, median, run_worker

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in SIZES:
            path = Path(tmp) / f"c{n}.yaml"
            write_cassette(path, n)
            per: dict[str, list[float]] = {s: [] for s in SYSTEMS}
            for r in range(ROUNDS):
                for system in SYSTEMS[r % 2:] + SYSTEMS[: r % 2]:
                    python = main_python() if system.startswith("pocketmesh") else alt_python()
                    per[system].append(run_worker(python, "case_cassette", system, str(path), str(n)))
            ours = median(per[SYSTEMS[0]])
            for system in SYSTEMS:
                value = median(per[system])
                rows.append(Row(NAME, f"{n} interactions", system, value, "req/s", ours / value,
                                "ratio: pocketmesh req/s over this row's"))
    return rows


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
