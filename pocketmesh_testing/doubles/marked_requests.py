"""Requests the harness marks with a header so that cassettes treat them apart.

- ``x-pocketmesh-simulation`` (``user`` / ``judge``): a simulated user's or a judge's model
  call. A cassette stores and matches it as if sent to ``simulation.pocketmesh.invalid``,
  keyed by path and body only, so a simulation recorded against one OpenAI-compatible endpoint
  (OpenAI, a local server, a loopback stand-in) replays wherever CI runs, with no endpoint set.
- ``x-pocketmesh-agent-under-test``: a request to a live agent a test talks to
  (``remote_agent``). It is the conversation under test, not model traffic: a cassette never
  records nor replays it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AGENT_HEADER", "SIMULATION_HEADER", "SIMULATION_HOST", "as_recorded"]

SIMULATION_HEADER = "x-pocketmesh-simulation"
"""Marks a request of a simulated user or a judge (the value says which)."""
SIMULATION_HOST = "simulation.pocketmesh.invalid"
"""Where marked simulation requests are stored and matched, whatever endpoint answered them."""
AGENT_HEADER = "x-pocketmesh-agent-under-test"
"""Marks a request to a live agent under test."""


def as_recorded(request: Any) -> Any:
    """A vcrpy request (already a copy) as a cassette keeps it: ``None`` for a live agent's,
    rewritten to :data:`SIMULATION_HOST` for a simulation's, unchanged otherwise."""
    if request.headers.get(AGENT_HEADER):
        return None
    if request.headers.get(SIMULATION_HEADER):
        query = f"?{request.parsed_uri.query}" if request.parsed_uri.query else ""
        request.uri = f"https://{SIMULATION_HOST}{request.path}{query}"
    return request
