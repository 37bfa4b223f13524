"""Flow edge coverage: which ``node -action-> successor`` edges the runs of a session took.

A recorder collects, per flow, the flow's wired edges and the ``(node, action)`` steps of every
trace it is shown. Property runs report to the active recorders themselves; other runs reach
them through the runtime's observer hook.

Flows are told apart by name *and* graph (start node, node ids, edges): two flows that share a
name (every ``Flow(x)`` is called ``Flow``) but not a graph are two flows, while the fresh flows
a factory builds for each example, all with one graph, are one. Each flow is reported under a
label: the one it was declared with (the inventory's skill id or ``module:attr``), else a named
flow's name, else ``Flow(<start node>)``; labels that would repeat get the start node, then a
number.

A flow without wired edges counts as one edge, taken when it runs, so a flow no test runs
always lowers the coverage.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocketmesh import Flow
from pocketmesh.diagram import FlowGraph, flow_graph

from pocketmesh_testing.properties.wiring import Edge, flow_edges, iter_nodes

__all__ = ["EdgeRecorder", "FlowCoverage", "active_recorders", "coverage_units", "flow_key", "record_run"]

_lock = threading.Lock()
_recorders: list[EdgeRecorder] = []
_DEFAULT_NAMES = frozenset({"Flow", "BatchFlow"})
"""The names flows get when none is given: they say nothing of which flow it is."""


def _start_id(flow: Flow) -> str:
    ids, _ = flow.node_ids()
    return ids.get(flow.start_node, flow.start_node.name)


def flow_key(flow: Flow) -> str:
    """What tells two flows apart: name, start node, node ids and wired edges (not the instance)."""
    graph = [sorted(node_id for node_id, _ in iter_nodes(flow)), sorted(map(list, flow_edges(flow)))]
    digest = hashlib.sha1(json.dumps(graph).encode(), usedforsecurity=False).hexdigest()[:12]
    return f"{flow.name}|{_start_id(flow)}|{digest}"


def coverage_units(edges: Iterable[Edge], taken: Iterable[Edge], runs: int) -> tuple[int, int]:
    """(covered, total) of one flow: its edges, or for a flow without edges whether it ran."""
    wired = set(edges)
    if not wired:
        return (1 if runs else 0), 1
    return len(wired & set(taken)), len(wired)


@dataclass
class FlowCoverage:
    """One flow's wired edges and the ones taken."""

    flow: str
    """The flow's name (``Flow`` when it was given none)."""
    edges: set[Edge] = field(default_factory=set)
    taken: set[Edge] = field(default_factory=set)
    runs: int = 0
    """How many runs of the flow were seen (0: defined, never run)."""
    graph: FlowGraph | None = None
    """The flow's nodes and edges, to draw it."""
    start: str = ""
    """The start node's id."""
    label: str | None = None
    """What the flow was declared as (a skill id, ``module:attr``); None: found by running it."""

    @property
    def missing(self) -> list[Edge]:
        """Wired edges no run took, sorted."""
        return sorted(self.edges - self.taken)

    @property
    def ratio(self) -> float:
        """Covered over total (see :func:`coverage_units`)."""
        covered, total = coverage_units(self.edges, self.taken, self.runs)
        return covered / total

    @property
    def default_label(self) -> str:
        """The label of a flow nothing declared: its name, or ``Flow(<start node>)`` for an unnamed one."""
        return f"{self.flow}({self.start})" if self.flow in _DEFAULT_NAMES else self.flow


class EdgeRecorder:
    """Collects edge coverage while active (``with recorder:``)."""

    def __init__(self) -> None:
        self.flows: dict[str, FlowCoverage] = {}
        """Per :func:`flow_key`, the flow's coverage."""
        self._lock = threading.Lock()

    def record(self, flow: Flow, trace: Iterable[Any], *, ran: bool = True, label: str | None = None) -> None:
        """Note ``flow``'s edges and the edges its ``trace`` (TraceStep items) took."""
        edges = flow_edges(flow)
        by_source: dict[tuple[str, str], Edge] = {(e[0], e[1]): e for e in edges}
        key = flow_key(flow)
        with self._lock:
            entry = self.flows.get(key)
            if entry is None:
                entry = self.flows[key] = FlowCoverage(flow.name, set(edges), graph=flow_graph(flow),
                                                       start=_start_id(flow))
            if label and entry.label is None:
                entry.label = label
            entry.runs += 1 if ran else 0
            for step in trace:
                edge = by_source.get((step[1], step[2]))
                if edge is not None:
                    entry.taken.add(edge)

    def declare(self, flow: Flow, label: str | None = None) -> None:
        """Note ``flow`` (under ``label``) even if no run takes it: a flow nothing ran still counts."""
        self.record(flow, (), ran=False, label=label)

    def labels(self) -> dict[str, str]:
        """A distinct label per flow key (see the module docstring)."""
        wanted = {key: c.label or c.default_label for key, c in self.flows.items()}
        counts = Counter(wanted.values())
        for key, label in wanted.items():
            if counts[label] > 1 and not label.endswith(f"({self.flows[key].start})"):
                wanted[key] = f"{label}({self.flows[key].start})"
        out: dict[str, str] = {}
        used: set[str] = set()
        for key in sorted(wanted, key=lambda k: (wanted[k], k)):
            label, n = wanted[key], 1
            while label in used:
                n += 1
                label = f"{wanted[key]} #{n}"
            used.add(label)
            out[key] = label
        return out

    def total(self) -> tuple[int, int]:
        """(covered, total) over every flow seen."""
        units = [coverage_units(c.edges, c.taken, c.runs) for c in self.flows.values()]
        return sum(u[0] for u in units), sum(u[1] for u in units)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary by label (edges as ``[node, action, successor]`` lists)."""
        labels = self.labels()
        return {
            labels[key]: {"edges": sorted(map(list, c.edges)), "taken": sorted(map(list, c.taken)), "runs": c.runs,
                          "name": c.flow, "start": c.start,
                          **({"graph": c.graph.to_json()} if c.graph is not None else {})}
            for key, c in sorted(self.flows.items(), key=lambda kv: labels[kv[0]])
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EdgeRecorder:
        """Read back :meth:`to_json` output (keyed by label)."""
        recorder = cls()
        for label, item in data.items():
            recorder.flows[label] = FlowCoverage(
                str(item.get("name", label)), {tuple(e) for e in item["edges"]},  # type: ignore[misc]
                {tuple(e) for e in item["taken"]},  # type: ignore[misc]
                runs=int(item.get("runs", 1)),
                graph=FlowGraph.from_json(item["graph"]) if "graph" in item else None,
                start=str(item.get("start", "")), label=label,
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
