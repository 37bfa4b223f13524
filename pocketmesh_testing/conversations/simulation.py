"""Simulated users and judges: a model plays the user, another call judges the transcript.

    async with a2a_agent(flows) as agent:
        result = await simulate(
            agent.conversation(skill="greeting"),
            persona="Dana, a first-time visitor who answers in short sentences",
            goal="get greeted by name, then say goodbye",
            criteria=["The agent greets Dana by name", "The agent says goodbye by name"],
        )
        result.assert_passed()

The conversation ends when the simulated user says it is done, when the agent's task reaches
a final state, or after ``max_turns`` user messages; then one judge call rules on every
criterion. The model is reached with the ``openai`` SDK (``llm=``, default one built from
``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``), so a cassette records and replays it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pocketmesh_testing.conversations.roles import NO_KEY, Verdict, ask_judge, ask_user
from pocketmesh_testing.conversations.transcript import Paint, plain
from pocketmesh_testing.errors import SimulationError
from pocketmesh_testing.settings import active_settings

if TYPE_CHECKING:
    from pocketmesh_testing.conversations.agents import Conversation, Reply

__all__ = ["DEFAULT_MODEL", "ENDINGS", "FINAL_STATES", "Simulation", "Verdict", "default_client",
           "default_model", "simulate"]

DEFAULT_MODEL = "gpt-4o-mini"
FINAL_STATES = frozenset({"completed", "failed", "canceled", "rejected"})
"""Task states after which an A2A task takes no more messages."""
ENDINGS = ("user-done", "agent-final", "max-turns")


@dataclass
class Simulation:
    """What a simulation did: the transcript, how it ended, and the judge's verdicts."""

    transcript: list[tuple[str, str]]
    turns: int
    ended_by: str
    verdicts: list[Verdict]
    final: Reply | None
    replies: list[Reply] = field(default_factory=list, repr=False)
    """The agent's reply to each user message, in order (``transcript`` holds their text)."""
    persona: str = ""
    goal: str = ""

    @property
    def passed(self) -> bool:
        """True when the judge passed every criterion (and trivially when there were none)."""
        return all(v.passed for v in self.verdicts)

    @property
    def failed(self) -> list[Verdict]:
        """The verdicts that did not pass."""
        return [v for v in self.verdicts if not v.passed]

    def render_transcript(self, paint: Paint = plain) -> list[str]:
        """One block per turn (the user's message, the agent's reply and its state), then how it ended."""
        out: list[str] = []
        for number in range(self.turns):
            out.append(f"  turn {number + 1}")
            user = self.transcript[2 * number][1] if 2 * number < len(self.transcript) else ""
            out.append(f"    {paint('user', cyan=True)}: {_short(user)}")
            if 2 * number + 1 < len(self.transcript):
                state = self.replies[number].state if number < len(self.replies) else "?"
                colour = {"completed": "green", "failed": "red", "canceled": "yellow"}.get(state, "blue")
                lines = self.transcript[2 * number + 1][1].splitlines() or [""]
                out.append(f"    {paint('agent', purple=True)} {paint(f'[{state}]', **{colour: True})}: {_short(lines[0])}")
                out.extend(f"           {_short(line)}" for line in lines[1:6])
        out.append(f"  ended by {self.ended_by} after {self.turns} user message(s)")
        return out

    def render_verdicts(self, paint: Paint = plain) -> list[str]:
        """Each criterion with PASS / FAIL and the judge's reason."""
        if not self.verdicts:
            return ["  no criteria: nothing judged"]
        out = [f"  verdicts: {len(self.verdicts) - len(self.failed)} of {len(self.verdicts)} criteria met"]
        for verdict in self.verdicts:
            mark = paint("PASS", green=True) if verdict.passed else paint("FAIL", red=True, bold=True)
            out.append(f"    {mark} {verdict.criterion}")
            out.append(f"         {verdict.reason}")
        return out

    def assert_passed(self) -> None:
        """Raise ``AssertionError`` naming each failed criterion and the judge's reason, then the transcript."""
        __tracebackhide__ = True
        failed = self.failed
        if not failed:
            return
        lines = [f"{len(failed)} of {len(self.verdicts)} criteria not met:"]
        for verdict in failed:
            lines += [f"  - criterion: {verdict.criterion}", f"    reason: {verdict.reason}"]
        lines += ["transcript:", *self.render_transcript()]
        raise AssertionError("\n".join(lines))

    def __str__(self) -> str:
        return "\n".join([*self.render_transcript(), *self.render_verdicts()])


def _short(text: str, width: int = 400) -> str:
    text = text.replace("\r", "")
    return text if len(text) <= width else text[: width - 3] + "..."


def default_model() -> str:
    """The ini key ``pocketmesh_simulator_model`` of the pytest run under way, else ``gpt-4o-mini``."""
    settings = active_settings()
    return (settings.simulator_model if settings is not None else "") or DEFAULT_MODEL


def default_client() -> Any:
    """An ``openai.AsyncOpenAI`` from ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``.

    Without a key it still starts (with a stand-in key), so a cassette can replay with no key
    at all; a call that reaches a server then fails saying the key is missing.
    """
    import openai

    return openai.AsyncOpenAI(api_key=os.environ.get("OPENAI_API_KEY") or NO_KEY)


def _check_arguments(conversation: Any, persona: Any, goal: Any, max_turns: Any, criteria: Any, first_message: Any) -> list[str]:
    __tracebackhide__ = True
    if not callable(getattr(conversation, "send", None)):
        hint = " (that is an agent: pass agent.conversation(skill=...))" if hasattr(conversation, "conversation") else ""
        raise TypeError(f"simulate() takes a Conversation, got {type(conversation).__name__}{hint}.")
    for name, value in (("persona", persona), ("goal", goal)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"simulate({name}=...) needs a non-empty string describing the user, got {value!r}.")
    if isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1:
        raise ValueError(f"simulate(max_turns=...) needs a whole number of user messages >= 1, got {max_turns!r}.")
    if isinstance(criteria, str):
        raise TypeError(f"simulate(criteria=...) takes a list of strings, got the string {criteria!r}; write criteria=[{criteria!r}].")
    items = list(criteria or ())
    bad = [c for c in items if not isinstance(c, str) or not c.strip()]
    if bad:
        raise ValueError(f"simulate(criteria=...) needs non-empty strings, got {bad[0]!r} among {items!r}.")
    if first_message is not None and (not isinstance(first_message, str) or not first_message.strip()):
        raise ValueError(f"simulate(first_message=...) needs a non-empty string or None, got {first_message!r}.")
    return items


def _agent_text(reply: Reply) -> str:
    # An agent that answers only in artifacts still said something the user reads.
    return reply.text or reply.artifact_text


async def simulate(
    conversation: Conversation,
    *,
    persona: str,
    goal: str,
    max_turns: int = 10,
    criteria: Sequence[str] = (),
    first_message: str | None = None,
    llm: Any = None,
    model: str | None = None,
) -> Simulation:
    """Let a model play the user with ``persona`` and ``goal`` against ``conversation``, then judge it.

    ``first_message`` is sent as it is instead of asking the model for the first message.
    Without ``criteria`` no judge is called.
    """
    __tracebackhide__ = True
    items = _check_arguments(conversation, persona, goal, max_turns, criteria, first_message)
    model = model or default_model()
    own_client = llm is None
    client = default_client() if own_client else llm
    transcript: list[tuple[str, str]] = []
    replies: list[Reply] = []
    ended_by = "max-turns"
    try:
        while len(replies) < max_turns:
            if not replies and first_message is not None:
                message = first_message
            else:
                message, done = await ask_user(client, model, persona, goal, transcript)
                if done:
                    ended_by = "user-done"
                    break
            transcript.append(("user", message))
            try:
                reply = await conversation.send(message)
            except Exception as error:  # the agent refused or broke: say where the conversation was
                raise SimulationError(
                    f"the agent did not answer user message {len(replies) + 1} ({message!r:.120}): "
                    f"{type(error).__name__}: {error}", transcript,
                ) from error
            replies.append(reply)
            transcript.append(("agent", _agent_text(reply)))
            if reply.state in FINAL_STATES:
                ended_by = "agent-final"
                break
        verdicts = await ask_judge(client, model, goal, items, transcript, ended_by) if items else []
    finally:
        if own_client:
            await client.close()
    return Simulation(transcript, len(replies), ended_by, verdicts, replies[-1] if replies else None,
                      replies, persona, goal)
