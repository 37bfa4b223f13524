"""How the properties judge one run's end, and explain it: a cycle past the step budget, an
unexpected error (named so it can be pasted into ``expected_errors``), and what led there — an
action the script forced on a node that would have chosen another, or a model failure the
generated outside world injected.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from pocketmesh import StepLimitError

from pocketmesh_testing.properties.driving import Outcome
from pocketmesh_testing.properties.scripted import ScriptedFailure
from pocketmesh_testing.properties.strategies import LLMFailure, OutsideWorld

__all__ = ["forced_note", "is_expected", "model_failure_note", "public_name", "termination_problem", "unexpected_error"]

Expected = Sequence[type[BaseException] | str]
"""Expected errors: classes, or names (``module.Class`` or ``Class``) as kept examples store them."""


def public_name(cls: type) -> str:
    """How user code names ``cls``: ``KeyError``, ``openai.RateLimitError``, ``myapp.errors.Refused``."""
    if cls.__module__ == "builtins":
        return cls.__qualname__
    top = sys.modules.get(cls.__module__.partition(".")[0])
    if top is not None and getattr(top, cls.__qualname__, None) is cls:
        return f"{top.__name__}.{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def is_expected(error: BaseException | None, expected: Expected) -> bool:
    """``error`` is one of ``expected`` (a class or a subclass of one; or named by class name)."""
    for wanted in expected:
        if isinstance(wanted, type):
            if isinstance(error, wanted):
                return True
        elif any(wanted in (c.__qualname__, f"{c.__module__}.{c.__qualname__}", public_name(c))
                 for c in type(error).__mro__):
            return True
    return False


def unexpected_error(flow_name: str, outcome: Outcome, expected: Expected) -> str | None:
    """Why a run that failed with an error nobody expected breaks the property, or None."""
    error = outcome.error
    if outcome.status != "failed" or error is None or isinstance(error, (ScriptedFailure, StepLimitError)):
        return None
    if is_expected(error, expected):
        return None
    return (
        f"flow {flow_name!r} failed with {type(error).__name__}: {error}. If that failure is by design, "
        f"pass expected_errors=({public_name(type(error))},)."
    )


def termination_problem(flow: Any, outcome: Outcome, expected: Expected, max_steps: int) -> str | None:
    """Why ``outcome`` breaks termination (a step-limit cycle, an unexpected error), or None."""
    if outcome.status != "failed":
        return None
    error = outcome.error
    if isinstance(error, StepLimitError):
        return (
            f"flow {flow.name!r} did not terminate within {max_steps} steps: it keeps repeating the cycle "
            f"{' -> '.join(error.cycle)}. Give the loop an exit that does not depend on the model's answer "
            f"(e.g. count attempts in shared state)."
        )
    return unexpected_error(flow.name, outcome, expected)


def forced_note(forced: Sequence[tuple[str, str, str]], property_name: str = "assert_terminates") -> str | None:
    """A paragraph on the scripted actions that overrode the nodes' own choices, or None."""
    if not forced:
        return None
    shown = "; ".join(f"{node} was made to take {action!r} where it returned {own!r}" for node, own, action in forced[:4])
    more = f" (and {len(forced) - 4} more)" if len(forced) > 4 else ""
    return (
        f"The run reached this through scripted action(s) its nodes did not choose: {shown}{more}. "
        f"{property_name} scripts actions to explore every wired edge, so a node can be entered in a state "
        f"its predecessors' own logic never produces. If that state cannot happen, pass scripted=False "
        f"(every node then acts on its own); if it can, handle it in the node."
    )


def model_failure_note(error: BaseException | None, world: OutsideWorld) -> str | None:
    """A paragraph for an error that is the model's HTTP failure the generated world injected, or None."""
    injected = {event.status for event in world.llm if isinstance(event, LLMFailure)}
    status = getattr(error, "status_code", None)
    if error is None or status not in injected:
        return None
    base = next((c for c in type(error).__mro__ if c.__name__ == "APIStatusError"), type(error))
    return (
        f"The model answered HTTP {status}: the generated outside world includes model failures "
        f"(HTTP {', '.join(map(str, sorted(injected)))} here). To accept a run that ends on a failing model, "
        f"pass expected_errors=({public_name(base)},); to leave model failures out, pass "
        f"world=outside_world(failures=()) (from pocketmesh_testing.strategies)."
    )
