"""Scenario expectations that must fail do, each with its own message: regex, not_contains,
a missing shared key, case-sensitive contains, artifacts and streamed chunks."""

from __future__ import annotations

import pytest

# Imported here so pytester's in-process runs find them loaded instead of importing them anew.
import pocketmesh.examples.greeting  # noqa: F401
import pocketmesh.examples.llm  # noqa: F401
import pocketmesh_testing.plugin  # noqa: F401

GREETING = """\
agent: pocketmesh.examples.greeting:flows
skill: greeting
scenarios:
  - name: control
    turns:
      - user: Dana
        expect: {text: {regex: "^Hello, Dana!"}, shared: {userName: Dana}}
  - name: regex
    turns:
      - user: Dana
        expect:
          text: {regex: "^Goodbye"}
  - name: not contains
    turns:
      - user: Dana
        expect:
          text: {not_contains: Dana}
  - name: missing shared key
    turns:
      - user: Dana
        expect:
          shared: {userName: Dana, userAge: 30}
  - name: contains is case-sensitive
    turns:
      - user: Dana
        expect:
          text: {contains: "hello, dana"}
"""

STREAM = """\
agent: pocketmesh.examples.llm:flows
skill: stream
scenarios:
  - name: control
    turns:
      - user: hi
        stream: true
        llm: [{stream: ["Hi ", "there"]}]
        expect: {chunks: ["Hi ", "there"], artifacts: [{id: response-stream, name: response, text: "Hi there"}]}
  - name: artifact count
    turns:
      - user: hi
        llm: [{stream: ["Hi ", "there"]}]
        expect:
          artifacts: [{name: response}, {name: summary}]
  - name: artifact name
    turns:
      - user: hi
        llm: [{stream: ["Hi ", "there"]}]
        expect:
          artifacts: [{name: answer}]
  - name: artifact text
    turns:
      - user: hi
        llm: [{stream: ["Hi ", "there"]}]
        expect:
          artifacts: [{text: {contains: "Bye"}}]
  - name: chunks
    turns:
      - user: hi
        stream: true
        llm: [{stream: ["Hi ", "there"]}]
        expect:
          chunks: ["Hi", " there"]
"""


LEGEND = ["  - expected", "  + actual"]


def test_each_failing_expectation_fails_with_its_own_message(pytester: pytest.Pytester) -> None:
    scenarios = pytester.path / "scenarios"
    scenarios.mkdir()
    (scenarios / "greeting.yaml").write_text(GREETING)
    (scenarios / "stream.yaml").write_text(STREAM)
    result = pytester.runpytest("--color=no", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=8)
    out = result.stdout.str()
    expected = {
        "regex": ["mismatch at turn 1, expect.text (scenarios/greeting.yaml:12): does not match the regex '^Goodbye'",
                  *LEGEND, "  - ^Goodbye", "  + Hello, Dana! What's on your mind?"],
        "not contains": ["mismatch at turn 1, expect.text (scenarios/greeting.yaml:17): contains 'Dana'",
                         *LEGEND, "  - Dana", "  + Hello, Dana! What's on your mind?"],
        "missing shared key": ["mismatch at turn 1, expect.shared (scenarios/greeting.yaml:22): "
                               "shared['userAge'] differs", *LEGEND, "  - 30", "  + <missing>"],
        "contains is case-sensitive": ["mismatch at turn 1, expect.text (scenarios/greeting.yaml:27): "
                                       "does not contain 'hello, dana'",
                                       *LEGEND, "  - hello, dana", "  + Hello, Dana! What's on your mind?"],
        "artifact count": ["mismatch at turn 1, expect.artifacts (scenarios/stream.yaml:15): "
                           "expected 2 artifact(s), got 1"],
        "artifact name": ["mismatch at turn 1, expect.artifacts[0].name (scenarios/stream.yaml:21): name differs",
                          *LEGEND, "  - answer", "  + response"],
        "artifact text": ["mismatch at turn 1, expect.artifacts[0].text (scenarios/stream.yaml:27): "
                          "does not contain 'Bye'", *LEGEND, "  - Bye", "  + Hi there"],
        "chunks": ["mismatch at turn 1, expect.chunks (scenarios/stream.yaml:34): streamed chunks differ",
                   *LEGEND, "    [", '  -   "Hi",', '  +   "Hi ",', '  -   " there"', '  +   "there"', "    ]"],
    }
    sections = _failure_sections(out)
    assert sorted(sections) == sorted(expected), sorted(sections)
    for name, lines in expected.items():
        section = sections[name]
        start = section.index(lines[0]) if lines[0] in section else -1
        assert start >= 0, f"{name!r}: {lines[0]!r} not in\n" + "\n".join(section)
        assert section[start:start + len(lines)] == lines, f"{name!r}:\n" + "\n".join(section)
        # One mismatch per scenario: the first unmet expectation, and only it.
        assert sum(line.startswith("mismatch at ") for line in section) == 1, "\n".join(section)


def _failure_sections(out: str) -> dict[str, list[str]]:
    """Each failed scenario's report lines, by scenario name (from pytest's ``___ name ___`` headers)."""
    import re

    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in out.splitlines():
        header = re.fullmatch(r"_{3,} (.+?) _{3,}", line)
        if header:
            current = sections.setdefault(header.group(1).removeprefix("scenario: "), [])
        elif line.startswith("=") and current is not None and "short test summary" in line:
            current = None
        elif current is not None:
            current.append(line)
    return sections
