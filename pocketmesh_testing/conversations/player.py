"""Playing a scenario: send each turn to an agent and check the reply, stopping at the first mismatch.

Independent of pytest: the scenario items, the recorder and the main job all play through
:func:`play`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocketmesh_testing.conversations.agents import Agent, Conversation, Reply, artifact_text, whole_numbers
from pocketmesh_testing.doubles.fake_llm import FakeLLM
from pocketmesh_testing.conversations.format import Scenario, Turn
from pocketmesh_testing.conversations.snapshots import dumps, normalise, scenario_snapshot_path
from pocketmesh_testing.conversations.transcript import Mismatch

__all__ = ["Playback", "ScenarioMismatchError", "check_matcher", "environment", "fake_llm_for", "play", "subset_problem"]


class ScenarioMismatchError(AssertionError):
    """A reply did not meet its expectation; carries the conversation so far."""

    def __init__(self, mismatch: Mismatch, playback: Playback) -> None:
        self.mismatch = mismatch
        self.playback = playback
        super().__init__(f"turn {mismatch.turn}, {mismatch.field}: {mismatch.problem}")


@dataclass
class Playback:
    """What happened while playing: the conversation, snapshot writes, notes."""

    scenario: Scenario
    conversation: Conversation | None = None
    written_snapshots: list[Path] = field(default_factory=list)


def check_matcher(matcher: Any, actual: str) -> str | None:
    """Why ``actual`` fails ``matcher`` (a string, or equals / contains / not_contains / regex), or ``None``."""
    if isinstance(matcher, str):
        matcher = {"equals": matcher}
    (how, wanted), = matcher.items()
    if how == "equals" and actual != wanted:
        return "text differs"
    if how == "contains" and wanted not in actual:
        return f"does not contain {wanted!r}"
    if how == "not_contains" and wanted in actual:
        return f"contains {wanted!r}"
    if how == "regex" and re.search(wanted, actual) is None:
        return f"does not match the regex {wanted!r}"
    return None


def _wanted(matcher: Any) -> str:
    """What a matcher looks for, to show beside the actual text."""
    return matcher if isinstance(matcher, str) else str(next(iter(matcher.values())))


def subset_problem(expected: Any, actual: Any, at: str = "shared") -> tuple[str, Any, Any] | None:
    """The first place where ``expected`` is not a subset of ``actual``: (path, expected, actual)."""
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return at, expected, actual
        for key, value in expected.items():
            if key not in actual:
                return f"{at}[{key!r}]", value, "<missing>"
            found = subset_problem(value, actual[key], f"{at}[{key!r}]")
            if found is not None:
                return found
        return None
    return None if expected == actual else (at, expected, actual)


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block, restoring the previous values after."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


FAKE_LLM_PORT_ENV = "POCKETMESH_FAKE_LLM_PORT"
"""Set (by ``pocketmesh demo``) to the port live agents expect their model at."""


@contextmanager
def fake_llm_for(scenario: Scenario) -> Iterator[FakeLLM | None]:
    """A fake LLM on loopback that the agent's ``openai`` client finds through the environment."""
    if not scenario.uses_fake_llm:
        yield None
        return
    # A live agent started with OPENAI_BASE_URL on an agreed port finds the fake there.
    fake = FakeLLM(port=int(os.environ.get(FAKE_LLM_PORT_ENV) or 0))
    try:
        with environment({"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": fake.api_key}):
            yield fake
    finally:
        fake.close()


def _script(fake: FakeLLM, replies: list[Any]) -> None:
    for reply in replies:
        if isinstance(reply, str):
            fake.reply(reply)
        elif "text" in reply:
            fake.reply(reply["text"])
        elif "stream" in reply:
            fake.reply_stream(reply["stream"])
        elif "fail" in reply:
            fake.fail(reply["fail"], message=reply.get("message"), times=1)
        else:
            fake.reply_tool_call(reply["tool_call"]["name"], reply["tool_call"].get("arguments") or {})


async def play(scenario: Scenario, agent: Agent, *, fake: FakeLLM | None = None, update_snapshots: bool = False) -> Playback:
    """Play ``scenario`` against ``agent``; the first unmet expectation raises :class:`ScenarioMismatchError`."""
    playback = Playback(scenario)
    conv = agent.conversation(skill=scenario.skill)
    playback.conversation = conv
    for turn in scenario.turns:
        if fake is not None:
            fake.reset()
            _script(fake, turn.llm or [])
        reply: Reply | None = None
        error: BaseException | None = None
        try:
            if turn.stream:
                reply = await conv.stream(turn.parts, message_id=turn.message_id)
            else:
                reply = await conv.send(turn.parts, message_id=turn.message_id)
        except Exception as exc:  # the agent refused the message: an expectation may want that
            error = exc
        mismatch = _first_cause(turn, reply, error, fake, playback, update_snapshots)
        if mismatch is not None:
            raise ScenarioMismatchError(mismatch, playback)
    return playback


def _first_cause(
    turn: Turn, reply: Reply | None, error: BaseException | None, fake: FakeLLM | None, playback: Playback, update: bool
) -> Mismatch | None:
    """The mismatch that explains the others: a refused message, then a model call nothing was
    scripted for, then the expectations, and only then scripted replies left unused (a turn that
    failed early leaves them unused as a consequence, not a cause)."""
    if error is not None and "error" not in turn.expect:
        return _check(turn, reply, error, playback, update)
    return (_llm_problem(turn, fake, unused=False) or _check(turn, reply, error, playback, update)
            or _llm_problem(turn, fake, unused=True))


def _llm_problem(turn: Turn, fake: FakeLLM | None, *, unused: bool) -> Mismatch | None:
    if fake is None:
        return None
    line = turn.line
    if not unused and fake.unscripted:
        return Mismatch(turn.index + 1, "llm", f"the agent called the LLM {len(fake.calls)} time(s) but this turn scripts "
                        f"{len(fake.calls) - len(fake.unscripted)} repl(ies); unscripted: {fake.unscripted[0]}", line=line)
    if not unused and fake.misused:
        return Mismatch(turn.index + 1, "llm", fake.misused[0], line=line)
    if unused and fake.pending:
        return Mismatch(turn.index + 1, "llm", f"scripted LLM replies never requested in this turn: {', '.join(fake.pending)}", line=line)
    return None


def _check(turn: Turn, reply: Reply | None, error: BaseException | None, playback: Playback, update: bool) -> Mismatch | None:
    n, expect, lines = turn.index + 1, turn.expect, turn.field_lines
    if error is not None or reply is None:
        text = f"{type(error).__name__}: {error}"
        if "error" not in expect:
            return Mismatch(n, "send", f"the agent did not answer: {text}", line=turn.line)
        why = check_matcher(expect["error"], text)
        return None if why is None else Mismatch(n, "expect.error", why, _wanted(expect["error"]), text, lines.get("error"))
    if "error" in expect:
        return Mismatch(n, "expect.error", "the send succeeded but an error was expected",
                        _wanted(expect["error"]), f"[{reply.state}] {reply.text}", lines.get("error"))
    if "state" in expect and reply.state != expect["state"]:
        return Mismatch(n, "expect.state", "state differs", expect["state"], reply.state, lines.get("state"))
    for name, actual in (("text", reply.text), ("artifact_text", reply.artifact_text)):
        if name in expect:
            why = check_matcher(expect[name], actual)
            if why is not None:
                return Mismatch(n, f"expect.{name}", why, _wanted(expect[name]), actual, lines.get(name))
    if "artifacts" in expect:
        found = _artifact_problem(n, expect["artifacts"], reply, lines.get("artifacts"))
        if found is not None:
            return found
    if "chunks" in expect:
        wanted = expect["chunks"]
        name = wanted.get("artifact") if isinstance(wanted, dict) else None
        wanted = wanted["equals"] if isinstance(wanted, dict) else wanted
        chunks = reply.chunks_of(name)
        if chunks != wanted:
            of = f" of artifact {name!r}" if name else ""
            return Mismatch(n, "expect.chunks", f"streamed chunks{of} differ", wanted, chunks, lines.get("chunks"))
    if "shared" in expect or expect.get("snapshot"):
        if not reply.has_shared:
            try:
                reply.shared
            except (AttributeError, LookupError) as exc:
                return Mismatch(n, "expect.shared" if "shared" in expect else "expect.snapshot", str(exc),
                                line=lines.get("shared", lines.get("snapshot")))
        shared = reply.shared
        if "shared" in expect:
            found_at = subset_problem(expect["shared"], shared)
            if found_at is not None:
                path, wanted, actual = found_at
                return Mismatch(n, "expect.shared", f"{path} differs", wanted, actual, lines.get("shared"))
        if expect.get("snapshot"):
            return _snapshot_problem(turn, shared, playback, update)
    return None


def _artifact_problem(n: int, expected: list[dict[str, Any]], reply: Reply, line: int | None) -> Mismatch | None:
    actual = reply.artifacts
    summary = [{"id": a.get("artifactId"), "name": a.get("name"), "text": artifact_text(a), "data": _artifact_data(a)}
               for a in actual]
    if len(expected) != len(actual):
        return Mismatch(n, "expect.artifacts", f"expected {len(expected)} artifact(s), got {len(actual)}", expected, summary, line)
    for i, (want, got) in enumerate(zip(expected, summary)):
        for key in ("id", "name"):
            if key in want and want[key] != got[key]:
                return Mismatch(n, f"expect.artifacts[{i}].{key}", f"{key} differs", want[key], got[key], line)
        if "text" in want:
            why = check_matcher(want["text"], got["text"])
            if why is not None:
                return Mismatch(n, f"expect.artifacts[{i}].text", why, _wanted(want["text"]), got["text"], line)
        if "data" in want:
            if got["data"] is None:
                return Mismatch(n, f"expect.artifacts[{i}].data", "the artifact has no data part", want["data"], got["text"], line)
            found = subset_problem(want["data"], got["data"], "data")
            if found is not None:
                path, wanted, value = found
                return Mismatch(n, f"expect.artifacts[{i}].data", f"{path} differs", wanted, value, line)
    return None


def _artifact_data(artifact: Mapping[str, Any]) -> Any:
    """The data of an artifact's data part(s): one part's data, a list for several, None for none."""
    found = [whole_numbers(p["data"]) for p in artifact.get("parts", []) if "data" in p]
    return None if not found else found[0] if len(found) == 1 else found


def _snapshot_problem(turn: Turn, shared: dict[str, Any], playback: Playback, update: bool) -> Mismatch | None:
    scenario = playback.scenario
    path = scenario_snapshot_path(scenario.path, scenario.name, turn.index + 1)
    text = dumps(normalise(shared))
    stored = path.read_text(encoding="utf-8") if path.exists() else None
    if stored == text:
        return None
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        playback.written_snapshots.append(path)
        return None
    line = turn.field_lines.get("snapshot")
    if stored is None:
        return Mismatch(turn.index + 1, "expect.snapshot", f"no snapshot at {path}; run pytest with --snapshot-update to write it", line=line)
    import difflib

    diff = [d.rstrip("\n") for d in difflib.unified_diff(stored.splitlines(), text.splitlines(), "snapshot", "shared", lineterm="", n=2)][2:]
    return Mismatch(turn.index + 1, "expect.snapshot", f"shared state differs from {path.name} (update it with --snapshot-update)",
                    line=line, diff=diff)
