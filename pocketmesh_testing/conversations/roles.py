"""The two parts a model plays in a simulation: the simulated user and the judge.

Each is one chat completion whose content must be a JSON object:

- the user, once per turn: ``{"message": str, "done": bool}``. It is told its persona and its
  goal and shown the conversation so far; it never sees the judge's criteria.
- the judge, once at the end: ``{"verdicts": [{"criterion": str, "passed": bool, "reason": str}]}``,
  one verdict per criterion, in order.

Both requests carry the ``x-pocketmesh-simulation`` header (``user`` / ``judge``): cassettes key
them by path and body instead of host, so a recording replays wherever it runs. An answer that
is not the object asked for raises :class:`~pocketmesh_testing.errors.SimulationAnswerError`
naming what came back and what was expected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pocketmesh_testing.doubles.marked_requests import SIMULATION_HEADER
from pocketmesh_testing.errors import CassetteMissError, PocketMeshTestingError, SimulationAnswerError, SimulationError

__all__ = ["JUDGE_ANSWER", "NO_KEY", "USER_ANSWER", "Verdict", "ask_judge", "ask_user", "judge_messages",
           "parse_user_answer", "parse_verdicts", "user_messages"]

NO_KEY = "sk-pocketmesh-no-key-set"
"""The key a default client starts with when ``OPENAI_API_KEY`` is unset (replay needs none)."""
USER_ANSWER = '{"message": str, "done": bool}'
JUDGE_ANSWER = '{"verdicts": [{"criterion": str, "passed": bool, "reason": str}]}'
_WHO = {"user": "simulated user", "judge": "judge"}


@dataclass(frozen=True)
class Verdict:
    """The judge's ruling on one criterion."""

    criterion: str
    passed: bool
    reason: str


# -- what each role is told ------------------------------------------------------------------

_USER_SYSTEM = """\
You are role-playing a person who is chatting with an AI agent. The agent does not know \
this is a test, and you never tell it.

Who you are:
{persona}

What you want from this conversation:
{goal}

How to play:
- Write only your next message to the agent, the way this person would type it: in their \
voice, usually one or two sentences.
- Work towards your goal a step at a time. Share details when the agent needs them, not all \
at once; never invent facts that your description does not give you (if asked, say you do \
not know).
- React to what the agent actually said. Never write the agent's part, and never mention \
that you are simulated, role-playing or an AI.
- When your goal is reached, or it clearly cannot be reached in this conversation, stop: \
answer with "done": true (that message is not sent).

Answer with one JSON object and nothing else: {{"message": "<your next message>", "done": false}}."""

_JUDGE_SYSTEM = """\
You judge a conversation between a user and an AI agent against a list of criteria.

- Judge every criterion separately, only on what the transcript shows. A criterion the \
transcript gives no evidence for is not met.
- Give a short reason for each ruling that points at what was, or was not, said.
- Keep the criteria in the order given and copy each one's text as it is.

Answer with one JSON object and nothing else:
{"verdicts": [{"criterion": "<the criterion>", "passed": true, "reason": "<one or two sentences>"}]}
with exactly one verdict per criterion."""


def _transcript_text(transcript: Sequence[tuple[str, str]]) -> str:
    return "\n".join(f"{role}: {text}" for role, text in transcript)


def user_messages(persona: str, goal: str, transcript: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """The chat messages asking the simulated user for its next message."""
    if transcript:
        ask = (f"The conversation so far (you are \"user\"):\n\n{_transcript_text(transcript)}\n\n"
               f"Write your next message, or end the conversation, as JSON.")
    else:
        ask = "The conversation has not started yet. Write your first message to the agent, as JSON."
    return [
        {"role": "system", "content": _USER_SYSTEM.format(persona=persona.strip(), goal=goal.strip())},
        {"role": "user", "content": ask},
    ]


def judge_messages(goal: str, criteria: Sequence[str], transcript: Sequence[tuple[str, str]], ended_by: str) -> list[dict[str, str]]:
    """The chat messages asking the judge for one verdict per criterion."""
    why = {
        "user-done": "the user ended it",
        "agent-final": "the agent finished the task",
        "max-turns": "it reached its limit of user messages",
    }.get(ended_by, ended_by)
    numbered = "\n".join(f"{n}. {criterion}" for n, criterion in enumerate(criteria, 1))
    ask = (f"The user's goal was: {goal.strip()}\n\n"
           f"Transcript (the conversation ended because {why}):\n\n{_transcript_text(transcript) or '(no messages)'}\n\n"
           f"Criteria:\n{numbered}\n\nAnswer with {len(criteria)} verdict(s), as JSON.")
    return [{"role": "system", "content": _JUDGE_SYSTEM}, {"role": "user", "content": ask}]


# -- asking --------------------------------------------------------------------------------------


async def _complete(llm: Any, model: str, messages: list[dict[str, str]], role: str,
                    transcript: Sequence[tuple[str, str]]) -> str:
    __tracebackhide__ = True
    who = _WHO[role]
    try:
        completion = await llm.chat.completions.create(
            model=model, messages=messages, response_format={"type": "json_object"},
            extra_headers={SIMULATION_HEADER: role},
        )
    except Exception as error:  # any failure of the call: the SDK's, the transport's, a cassette's
        raise SimulationError(_call_failure(who, model, llm, error), list(transcript)) from error
    choices = getattr(completion, "choices", None) or []
    content = choices[0].message.content if choices and choices[0].message is not None else None
    if not isinstance(content, str) or not content.strip():
        finish = getattr(choices[0], "finish_reason", None) if choices else None
        raise SimulationAnswerError(
            f"the {who}'s model ({model}) answered with no content (finish_reason {finish!r}); "
            f"expected a JSON object {USER_ANSWER if role == 'user' else JUDGE_ANSWER}.",
            list(transcript),
        )
    return content


def _call_failure(who: str, model: str, llm: Any, error: BaseException) -> str:
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, CassetteMissError):
            return f"the {who}'s model call was not in the cassette: {cause}"
        if isinstance(cause, PocketMeshTestingError):  # the network guard, say: its message says what to do
            error = cause
            break
        cause = cause.__cause__ or cause.__context__
    where = getattr(llm, "base_url", None)
    if getattr(llm, "api_key", None) == NO_KEY:
        fix = ("OPENAI_API_KEY is not set: set it (and OPENAI_BASE_URL for an endpoint other than OpenAI's) "
               "to record this simulation, pass llm=, or replay a cassette that holds this call.")
    else:
        fix = "Check OPENAI_BASE_URL / OPENAI_API_KEY (or the llm= client), or replay a recorded cassette."
    return f"the {who}'s model call failed ({model} at {where}): {type(error).__name__}: {error}. {fix}"


async def ask_user(llm: Any, model: str, persona: str, goal: str, transcript: Sequence[tuple[str, str]]) -> tuple[str, bool]:
    """The simulated user's next ``(message, done)``."""
    __tracebackhide__ = True
    content = await _complete(llm, model, user_messages(persona, goal, transcript), "user", transcript)
    return parse_user_answer(content, transcript)


async def ask_judge(llm: Any, model: str, goal: str, criteria: Sequence[str],
                    transcript: Sequence[tuple[str, str]], ended_by: str) -> list[Verdict]:
    """The judge's verdicts, one per criterion, in the criteria's order."""
    __tracebackhide__ = True
    content = await _complete(llm, model, judge_messages(goal, criteria, transcript, ended_by), "judge", transcript)
    return parse_verdicts(content, criteria, transcript)


# -- reading the answers ---------------------------------------------------------------------


def _shown(content: str, width: int = 300) -> str:
    text = content.strip()
    return repr(text if len(text) <= width else text[: width - 3] + "...")


def _json_object(content: str, role: str, expected: str, transcript: Sequence[tuple[str, str]]) -> dict[str, Any]:
    text = content.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, flags=re.DOTALL)
    if fenced:  # some models wrap JSON in a code fence even when asked not to
        text = fenced.group(1)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise SimulationAnswerError(
            f"the {_WHO[role]}'s answer is not JSON ({error.msg} at character {error.pos}): got "
            f"{_shown(content)}; expected a JSON object {expected}. If the model ignores JSON instructions, "
            f"use one that follows them (model=, or the ini key pocketmesh_simulator_model).", list(transcript),
        ) from None
    if not isinstance(value, dict):
        raise SimulationAnswerError(
            f"the {_WHO[role]}'s answer is a JSON {type(value).__name__}, not an object: got "
            f"{_shown(content)}; expected a JSON object {expected}.", list(transcript),
        )
    return value


def _field_problem(value: dict[str, Any], name: str, kind: type, at: str) -> str | None:
    if name not in value:
        return f"{at} has no {name!r} field"
    if not isinstance(value[name], kind):
        return f"{at}'s {name!r} is {value[name]!r:.80} ({type(value[name]).__name__}), not a {'boolean' if kind is bool else 'string'}"
    return None


def parse_user_answer(content: str, transcript: Sequence[tuple[str, str]] = ()) -> tuple[str, bool]:
    """``(message, done)`` from the simulated user's answer, or :class:`SimulationAnswerError`."""
    value = _json_object(content, "user", USER_ANSWER, transcript)
    done = value.get("done")
    for name, kind in (("done", bool), ("message", str)):
        if name == "message" and done is True and value.get("message") is None:
            continue  # ending needs no message
        problem = _field_problem(value, name, kind, "the answer")
        if problem is not None:
            raise SimulationAnswerError(
                f"the simulated user's answer is malformed: {problem}: got {_shown(content)}; "
                f"expected a JSON object {USER_ANSWER}.", list(transcript),
            )
    message = str(value.get("message") or "")
    if not done and not message.strip():
        raise SimulationAnswerError(
            f"the simulated user's answer has an empty message and done: false: got {_shown(content)}; "
            f"expected a JSON object {USER_ANSWER} with a message to send, or done: true.", list(transcript),
        )
    return message, bool(done)


def parse_verdicts(content: str, criteria: Sequence[str], transcript: Sequence[tuple[str, str]] = ()) -> list[Verdict]:
    """One :class:`Verdict` per criterion from the judge's answer, or :class:`SimulationAnswerError`."""
    numbered = "; ".join(f"{n}. {c}" for n, c in enumerate(criteria, 1))
    expected = f"{JUDGE_ANSWER} with one verdict per criterion, in order ({numbered})"
    value = _json_object(content, "judge", expected, transcript)

    def bad(problem: str) -> SimulationAnswerError:
        return SimulationAnswerError(
            f"the judge's answer is malformed: {problem}: got {_shown(content)}; expected a JSON object {expected}.",
            list(transcript),
        )

    verdicts = value.get("verdicts")
    if not isinstance(verdicts, list):
        raise bad("the answer has no 'verdicts' list" if verdicts is None else
                  f"'verdicts' is a {type(verdicts).__name__}, not a list")
    if len(verdicts) != len(criteria):
        raise bad(f"{len(verdicts)} verdict(s) for {len(criteria)} criteria")
    for index, item in enumerate(verdicts):
        if not isinstance(item, dict):
            raise bad(f"verdict {index + 1} is {item!r:.80}, not an object")
        for name, kind in (("criterion", str), ("passed", bool), ("reason", str)):
            problem = _field_problem(item, name, kind, f"verdict {index + 1}")
            if problem is not None:
                raise bad(problem)
    return [Verdict(criterion, bool(item["passed"]), str(item["reason"]).strip())
            for criterion, item in zip(criteria, _in_criteria_order(verdicts, criteria))]


def _in_criteria_order(verdicts: list[dict[str, Any]], criteria: Sequence[str]) -> list[dict[str, Any]]:
    """The verdicts in the criteria's order: as given, unless the judge reordered exact copies."""
    def key(text: str) -> str:
        return " ".join(str(text).split()).casefold()

    by_text = {key(v["criterion"]): v for v in verdicts}
    if len(by_text) == len(verdicts) and all(key(c) in by_text for c in criteria):
        return [by_text[key(c)] for c in criteria]
    return verdicts
