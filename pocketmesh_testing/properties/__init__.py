"""Flow properties: Hypothesis strategies over what nodes and the outside world do, the scripted
mirror of a flow that drives it, static wiring facts, the two property checks
(:func:`assert_terminates` and :func:`assert_resume_idempotent`), the A2A state machine, edge
coverage, saved failing examples, the ``dev`` / ``release`` profiles and ``pocketmesh gate``.

``from pocketmesh_testing.properties import assert_terminates, assert_resume_idempotent``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["DEV", "RELEASE", "PropertyFailure", "assert_resume_idempotent", "assert_terminates"]

if TYPE_CHECKING:
    from pocketmesh_testing.properties.checks import (
        DEV,
        RELEASE,
        PropertyFailure,
        assert_resume_idempotent,
        assert_terminates,
    )


def __getattr__(name: str) -> Any:
    # Loaded on first use: the plugin imports this package (for the profiles) in every pytest
    # run, and the checks pull in Hypothesis strategies and the runtime.
    if name in __all__:
        from pocketmesh_testing.properties import checks

        return getattr(checks, name)
    raise AttributeError(f"module 'pocketmesh_testing.properties' has no attribute {name!r}")
