"""Flow edge coverage: which ``node -action-> successor`` edges the runs of a session took.

A recorder collects, per flow name, the flow's wired edges and the ``(node, action)`` steps of
every trace it is shown. Property runs report to the active recorders themselves; other runs
reach them through the runtime's observer hook when the runtime has one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocketmesh import Flow
from pocketmesh.diagram import FlowGraph, flow_graph

from pocketmesh_testing.properties.wiring import Edge, flow_edges

__all__ = ["EdgeRecorder", "FlowCoverage", "active_recorders", "record_run"]

_lock = threading.Lock()
_recorders: list[EdgeRecorder] = []


@dataclass
class FlowCoverage:
    """One flow's wired edges and the ones taken."""

    flow: str
    edges: set[Edge] = field(default_factory=set)
    taken: set[Edge] = field(default_factory=set)
    runs: int = 0
    """How many runs of the flow were seen (0: defined, never run)."""
    graph: FlowGraph | None = None
    """The flow's nodes and edges, to draw it (flows seen under one name merged)."""

    @property
    def missing(self) -> list[Edge]:
        """Wired edges no run took, sorted."""
        return sorted(self.edges - self.taken)

    @property
    def ratio(self) -> float:
        """Taken edges over wired edges (1.0 for a flow without edges)."""
        return len(self.taken & self.edges) / len(self.edges) if self.edges else 1.0


class EdgeRecorder:
    """Collects edge coverage while active (``with recorder:``)."""

    def __init__(self) -> None:
        self.flows: dict[str, FlowCoverage] = {}
        self._lock = threading.Lock()

    def record(self, flow: Flow, trace: Iterable[Any], *, ran: bool = True) -> None:
        """Note ``flow``'s edges and the edges its ``trace`` (TraceStep items) took."""
        edges = flow_edges(flow)
        by_source: dict[tuple[str, str], Edge] = {(e[0], e[1]): e for e in edges}
        with self._lock:
            entry = self.flows.setdefault(flow.name, FlowCoverage(flow.name))
            if not entry.edges.issuperset(edges) or entry.graph is None:
                graph = flow_graph(flow)
                if entry.graph is None:
                    entry.graph = graph
                else:
                    entry.graph.merge(graph)
            entry.edges.update(edges)
            entry.runs += 1 if ran else 0
            for step in trace:
                edge = by_source.get((step[1], step[2]))
                if edge is not None:
                    entry.taken.add(edge)

    def declare(self, flow: Flow) -> None:
        """Note ``flow``'s wired edges even if no run takes them: a flow nothing ran still counts."""
        self.record(flow, (), ran=False)

    def total(self) -> tuple[int, int]:
        """(taken, wired) over every flow seen."""
        taken = sum(len(c.taken & c.edges) for c in self.flows.values())
        return taken, sum(len(c.edges) for c in self.flows.values())

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (edges as ``[node, action, successor]`` lists)."""
        return {
            name: {"edges": sorted(map(list, c.edges)), "taken": sorted(map(list, c.taken)), "runs": c.runs,
                   **({"graph": c.graph.to_json()} if c.graph is not None else {})}
            for name, c in sorted(self.flows.items())
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EdgeRecorder:
        """Read back :meth:`to_json` output."""
        recorder = cls()
        for name, item in data.items():
            recorder.flows[name] = FlowCoverage(
                name, {tuple(e) for e in item["edges"]}, {tuple(e) for e in item["taken"]},  # type: ignore[misc]
                runs=int(item.get("runs", 1)),
                graph=FlowGraph.from_json(item["graph"]) if "graph" in item else None,
            )
        return recorder

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_json` to ``path``."""
        Path(path).write_text(json.dumps(self.to_json(), indent=1), encoding="utf-8")

    def __enter__(self) -> EdgeRecorder:
        with _lock:
            _recorders.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with _lock:
            if self in _recorders:
                _recorders.remove(self)


def active_recorders() -> list[EdgeRecorder]:
    """The recorders currently collecting."""
    with _lock:
        return list(_recorders)


def record_run(flow: Flow, trace: Iterable[Any]) -> None:
    """Show one run's trace to every active recorder (cheap when none is active)."""
    recorders = active_recorders()
    if not recorders:
        return
    steps = list(trace)
    for recorder in recorders:
        recorder.record(flow, steps)
