"""How cassettes keep the model traffic of simulated users and judges: under one host.

A simulation's requests carry the ``x-pocketmesh-simulation`` header (``user`` / ``judge``).
A cassette stores and matches them as if sent to ``simulation.pocketmesh.invalid``, keyed by
path and body only, so a simulation recorded against one OpenAI-compatible endpoint (OpenAI,
a local server, a loopback stand-in) replays wherever CI runs, with no endpoint configured.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SIMULATION_HEADER", "SIMULATION_HOST", "keyed_without_host"]

SIMULATION_HEADER = "x-pocketmesh-simulation"
"""Marks a request of a simulated user or a judge (the value says which)."""
SIMULATION_HOST = "simulation.pocketmesh.invalid"
"""Where marked requests are stored and matched, whatever endpoint answered them."""


def keyed_without_host(request: Any) -> Any:
    """A vcrpy request (already a copy) rewritten to :data:`SIMULATION_HOST` when it is marked."""
    if request.headers.get(SIMULATION_HEADER):
        query = f"?{request.parsed_uri.query}" if request.parsed_uri.query else ""
        request.uri = f"https://{SIMULATION_HOST}{request.path}{query}"
    return request
