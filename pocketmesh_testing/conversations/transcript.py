"""Conversations as text: the transcript of a scenario and the first mismatch, coloured when
the terminal is (through pytest's own terminal writer, so ``--color`` decides)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pocketmesh_testing.conversations.agents import Exchange, artifact_text

__all__ = ["Mismatch", "Paint", "plain", "render_mismatch", "render_transcript"]

Paint = Callable[..., str]
"""``paint(text, red=True, bold=True, ...)``: pytest's ``TerminalWriter.markup`` or :func:`plain`."""


def plain(text: str, **markup: bool) -> str:
    """No colour."""
    return text


@dataclass
class Mismatch:
    """The first expectation a reply did not meet."""

    turn: int
    field: str
    problem: str
    expected: Any = None
    actual: Any = None
    line: int | None = None
    diff: Sequence[str] | None = None


def _short(text: str, width: int = 400) -> str:
    text = text.replace("\r", "")
    return text if len(text) <= width else text[: width - 3] + "..."


def render_transcript(title: str, exchanges: Sequence[Exchange], paint: Paint = plain) -> list[str]:
    """One block per turn: what the user sent, the reply's state, text and artifacts."""
    out = [paint(title, bold=True)]
    for number, exchange in enumerate(exchanges, 1):
        how = " (stream)" if exchange.streamed else ""
        out.append(f"  turn {number}{how}")
        out.append(f"    {paint('user', cyan=True)}: {_short(exchange.sent_text)}")
        reply = exchange.reply
        if exchange.error is not None:
            out.append(f"    {paint('error', red=True, bold=True)}: {_short(f'{type(exchange.error).__name__}: {exchange.error}')}")
        elif reply is not None:
            colour = {"completed": "green", "failed": "red", "canceled": "yellow"}.get(reply.state, "blue")
            state = paint(f"[{reply.state}]", **{colour: True})
            lines = reply.text.splitlines() or [""]
            out.append(f"    {paint('agent', purple=True)} {state}: {_short(lines[0])}")
            out.extend(f"           {_short(line)}" for line in lines[1:6])
            for artifact in reply.artifacts:
                text = artifact_text(artifact)
                label = artifact.get("name") or artifact.get("artifactId", "")
                out.append(f"    artifact {label}: {_short(text, 200)}")
            if exchange.streamed:
                kinds = [e.kind for e in reply.events]
                out.append(f"    events: {len(kinds)} ({', '.join(f'{kinds.count(k)} {k}' for k in dict.fromkeys(kinds))})")
    return out


def _lines(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.splitlines() or [""]
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str).splitlines()


def render_mismatch(mismatch: Mismatch, where: str, paint: Paint = plain) -> list[str]:
    """The mismatch the way pytest shows a failed comparison: ``-`` expected, ``+`` actual."""
    place = f"{where}:{mismatch.line}" if mismatch.line else where
    out = [paint(f"mismatch at turn {mismatch.turn}, {mismatch.field} ({place}): {mismatch.problem}", red=True, bold=True)]
    diff = list(mismatch.diff) if mismatch.diff is not None else None
    if diff is None and (mismatch.expected is not None or mismatch.actual is not None):
        expected, actual = _lines(mismatch.expected), _lines(mismatch.actual)
        if len(expected) == 1 and len(actual) == 1:
            diff = [f"- {expected[0]}", f"+ {actual[0]}"]
        else:
            diff = [line for line in difflib.ndiff(expected, actual) if not line.startswith("?")]
    if diff:
        out.append("  - expected")
        out.append("  + actual")
        for line in diff:
            if line.startswith("-"):
                out.append("  " + paint(line, red=True))
            elif line.startswith("+"):
                out.append("  " + paint(line, green=True))
            else:
                out.append("  " + line)
    return out
