"""Hypothesis strategies over what a flow's nodes can do and what the outside world does.

``action_sequences(flow)`` draws, per node id, the actions that node takes on its successive
visits (an :class:`ActionScript`); ``outside_world()`` draws scripted LLM replies and HTTP
failures and the user's turns (an :class:`OutsideWorld`). Run a flow under both with
:func:`pocketmesh_testing.properties.scripted.scripted_flow` and :meth:`OutsideWorld.install`, or let
:mod:`pocketmesh_testing.properties` do it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from hypothesis import strategies as st

from pocketmesh import Flow

from pocketmesh_testing.doubles.llm_replies import ErrorReply, TextReply
from pocketmesh_testing.properties.wiring import iter_nodes, node_actions

__all__ = [
    "ActionScript",
    "LLMFailure",
    "OutsideWorld",
    "action_alphabet",
    "action_sequences",
    "outside_world",
]

DEFAULT_REPLIES = ("yes", "no", "done", "")
DEFAULT_USER_MESSAGES = ("hello", "yes", "no", "stop")
DEFAULT_FAILURES = (429, 500)


@dataclass(frozen=True)
class ActionScript:
    """Per node id, the actions the node takes on its 1st, 2nd, ... visit; then its own."""

    choices: Mapping[str, tuple[str, ...]]

    def __repr__(self) -> str:
        used = {n: a for n, a in self.choices.items() if a}
        if not used:
            return "ActionScript(nodes act on their own)"
        return "ActionScript(" + "; ".join(f"{n}: {', '.join(a)}" for n, a in used.items()) + ")"


@dataclass(frozen=True)
class LLMFailure:
    """The model endpoint answers with HTTP ``status``."""

    status: int

    def __repr__(self) -> str:
        return f"HTTP {self.status}"


LLMEvent = Union[str, LLMFailure]
"""One answer of the model: reply text, or an HTTP failure."""


@dataclass(frozen=True)
class OutsideWorld:
    """What happens outside the flow: the model's answers (the last one repeats) and user turns."""

    llm: tuple[LLMEvent, ...] = ()
    users: tuple[str, ...] = ()
    _position: list[int] = field(default_factory=lambda: [0], repr=False, compare=False)
    _ids: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The installed fake's id source, and the id number it stood at before each answer."""

    def answer(self, call: Any = None) -> TextReply | ErrorReply:
        """The model's next answer (after the script, the last answer repeats; none: empty text)."""
        index = self._position[0]
        self._position[0] += 1
        source = self._ids.get("source")
        if source is not None:
            self._ids.setdefault("at", {}).setdefault(index, source.peek())
        if not self.llm:
            return TextReply("")
        event = self.llm[min(index, len(self.llm) - 1)]
        if isinstance(event, LLMFailure):
            return ErrorReply(event.status, headers={"retry-after-ms": "1"})
        return TextReply(event)

    @property
    def position(self) -> int:
        """How many answers have been given."""
        return self._position[0]

    def rewind(self, position: int = 0) -> None:
        """Answer again from ``position``: a replayed step hears what it heard before, with the
        same ids (the installed fake's numbering goes back too), as an uninterrupted run would."""
        self._position[0] = position
        source, at = self._ids.get("source"), self._ids.get("at", {})
        if source is not None and position in at:
            source.restart(at[position])

    def install(self, fake_llm: Any) -> None:
        """Make ``fake_llm`` (a FakeLLM) answer every request from this world, from the start."""
        fake_llm.reset()
        made_up = getattr(fake_llm, "made_up", None)
        if made_up is not None:
            made_up.restart()
        self._ids.clear()
        self._ids["source"] = made_up
        self.rewind(0)
        fake_llm.respond_with(self.answer)

    def __repr__(self) -> str:
        return f"OutsideWorld(llm={list(self.llm)!r}, users={list(self.users)!r})"


def action_alphabet(
    flow: Flow, *, extra_actions: Mapping[str, Sequence[str]] | Sequence[str] | None = None
) -> dict[str, tuple[str, ...]]:
    """Per qualified node id, the actions it may take (nodes with no choice are left out)."""
    if not isinstance(flow, Flow):
        raise TypeError(f"flow must be a pocketmesh Flow, got {flow!r} ({type(flow).__name__}).")
    alphabet: dict[str, tuple[str, ...]] = {}
    known = dict(iter_nodes(flow))
    if isinstance(extra_actions, Mapping):
        unknown = sorted(set(extra_actions) - set(known))
        if unknown:
            raise ValueError(
                f"extra_actions names node(s) {unknown!r} that flow {flow.name!r} does not have; "
                f"its node ids are {sorted(known)!r}."
            )
    elif isinstance(extra_actions, str):
        raise TypeError(f"extra_actions must be a list of actions or a dict node id -> actions, got {extra_actions!r}.")
    for node_id, node in known.items():
        if isinstance(extra_actions, Mapping):
            extra = tuple(extra_actions.get(node_id, ()))
        else:
            extra = tuple(extra_actions or ())
        actions = node_actions(node, extra)
        # One action is no choice: the node's own finalize decides, and a script adds nothing.
        if len(actions) > 1:
            alphabet[node_id] = actions
    return alphabet


def action_sequences(
    flow: Flow,
    *,
    max_length: int = 6,
    extra_actions: Mapping[str, Sequence[str]] | Sequence[str] | None = None,
) -> st.SearchStrategy[ActionScript]:
    """Scripts of actions for ``flow``'s nodes: per node, up to ``max_length`` actions it can take."""
    if not isinstance(max_length, int) or max_length < 0:
        raise ValueError(f"max_length must be an int >= 0, got {max_length!r}; e.g. max_length=6.")
    alphabet = action_alphabet(flow, extra_actions=extra_actions)
    per_node = {
        node_id: st.lists(st.sampled_from(actions), max_size=max_length).map(tuple)
        for node_id, actions in alphabet.items()
    }
    return st.fixed_dictionaries(per_node).map(ActionScript)


def outside_world(
    *,
    replies: Sequence[str] | st.SearchStrategy[str] | None = None,
    failures: Sequence[int] = DEFAULT_FAILURES,
    user_messages: Sequence[str] | st.SearchStrategy[str] | None = None,
    max_llm: int = 5,
    max_turns: int = 2,
    llm: bool = True,
) -> st.SearchStrategy[OutsideWorld]:
    """Worlds of model answers (``replies`` and HTTP ``failures``) and user turns."""
    for name, value in (("max_llm", max_llm), ("max_turns", max_turns)):
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}.")
    bad = [s for s in failures if not isinstance(s, int) or not 400 <= s <= 599]
    if bad:
        raise ValueError(f"failures must be HTTP error statuses (400-599), got {bad!r}; e.g. failures=(429, 500).")
    texts = _strings(replies, DEFAULT_REPLIES, "replies")
    events: st.SearchStrategy[LLMEvent] = texts
    if failures:
        events = st.one_of(texts, st.sampled_from(tuple(failures)).map(LLMFailure))
    answers = st.lists(events, min_size=1, max_size=max(1, max_llm)).map(tuple) if llm else st.just(())
    users = st.lists(_strings(user_messages, DEFAULT_USER_MESSAGES, "user_messages"), max_size=max_turns).map(tuple)
    return st.builds(OutsideWorld, llm=answers, users=users)


def _strings(value: Sequence[str] | st.SearchStrategy[str] | None, default: Sequence[str], name: str) -> st.SearchStrategy[str]:
    if value is None:
        return st.sampled_from(tuple(default))
    if isinstance(value, st.SearchStrategy):
        return value
    if isinstance(value, str) or not value or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{name} must be a non-empty list of strings or a strategy, got {value!r}; e.g. {name}={list(default)!r}.")
    return st.sampled_from(tuple(value))
