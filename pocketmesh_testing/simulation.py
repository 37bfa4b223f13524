"""Simulated users and judges: ``from pocketmesh_testing.simulation import simulate``.

A model plays a user with a persona and a goal against an agent's conversation, and a judge
rules on the transcript; the work is done in :mod:`pocketmesh_testing.conversations.simulation`
(the loop and its result) and :mod:`pocketmesh_testing.conversations.roles` (what the user and
the judge are told, and how their answers are read). This is their public name.
"""

from pocketmesh_testing.conversations.simulation import (
    DEFAULT_MODEL,
    ENDINGS,
    FINAL_STATES,
    Simulation,
    Verdict,
    default_client,
    default_model,
    simulate,
)
from pocketmesh_testing.errors import SimulationAnswerError, SimulationError

__all__ = [
    "DEFAULT_MODEL",
    "ENDINGS",
    "FINAL_STATES",
    "Simulation",
    "SimulationAnswerError",
    "SimulationError",
    "Verdict",
    "default_client",
    "default_model",
    "simulate",
]
