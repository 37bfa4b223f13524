"""Pictures of flows: a flow's graph as data, and as a Mermaid ``flowchart``.

:func:`flow_graph` describes a flow as plain data (every node under its trace id, what kind it
is, the sub-flow it sits in, and every wired edge), which is JSON-ready, so a graph seen in one
process can be drawn in another. :func:`to_mermaid` draws a flow or such a graph: one arrow per
wired edge labelled with its action, sub-flows and BatchFlows as subgraphs, batch nodes in the
subroutine shape, and edges listed in ``untested`` dashed and coloured.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .node import BaseNode

if TYPE_CHECKING:
    from .flow import Flow

__all__ = ["FlowGraph", "GraphNode", "flow_graph", "to_mermaid"]

NodeKind = Literal["node", "batch-node", "flow", "batch-flow"]
Edge = tuple[str, str, str]
"""``(node id, action, successor id)``, with ids as traces write them (``Sub/Inner``)."""

DIRECTIONS = ("TD", "TB", "BT", "LR", "RL")
UNTESTED_STYLE = "stroke:#d62728,stroke-width:2px,stroke-dasharray:6 4,color:#d62728"
"""How ``untested`` edges are drawn (besides the dashed arrow): red, so they stand out."""

_KEYWORDS = frozenset({
    "end", "subgraph", "graph", "flowchart", "direction", "style", "class", "classdef",
    "click", "linkstyle", "default", "call", "href",
})


@dataclass(frozen=True)
class GraphNode:
    """One node of a flow graph: its trace id, its kind, the sub-flow it sits in."""

    id: str
    kind: NodeKind = "node"
    parent: str | None = None


@dataclass
class FlowGraph:
    """A flow's nodes and wired edges, sub-flows expanded, as plain data."""

    name: str
    kind: NodeKind = "flow"
    nodes: dict[str, GraphNode] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def merge(self, other: FlowGraph) -> None:
        """Add the nodes and edges of ``other`` not already here (two flows of one name)."""
        for node_id, node in other.nodes.items():
            self.nodes.setdefault(node_id, node)
        known = set(self.edges)
        self.edges.extend(e for e in other.edges if e not in known)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_json` reads it back."""
        return {
            "name": self.name,
            "kind": self.kind,
            "nodes": [[n.id, n.kind, n.parent] for n in self.nodes.values()],
            "edges": [list(e) for e in self.edges],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FlowGraph:
        """Read back :meth:`to_json` output."""
        nodes = {n[0]: GraphNode(n[0], n[1], n[2]) for n in data.get("nodes", [])}
        edges = [(e[0], e[1], e[2]) for e in data.get("edges", [])]
        return cls(str(data.get("name", "flow")), data.get("kind", "flow"), nodes, edges)

    @classmethod
    def from_edges(cls, name: str, edges: Collection[Edge]) -> FlowGraph:
        """A graph known only by its edges: sub-flows are read from the ``/`` in trace ids."""
        ids: dict[str, None] = {}
        for source, _, target in sorted(set(edges)):
            for node_id in (source, target):
                parts = node_id.split("/")
                ids.update(("/".join(parts[:depth]), None) for depth in range(1, len(parts) + 1))
        parents = {node_id.rsplit("/", 1)[0] for node_id in ids if "/" in node_id}
        graph = cls(name)
        for node_id in ids:
            parent = node_id.rsplit("/", 1)[0] if "/" in node_id else None
            graph.nodes[node_id] = GraphNode(node_id, "flow" if node_id in parents else "node", parent)
        graph.edges = sorted(set(edges))
        return graph


def _kind(node: BaseNode) -> NodeKind:
    if node.is_flow:
        return "batch-flow" if getattr(node, "is_batch_flow", False) else "flow"
    return "batch-node" if node.is_batch else "node"


def flow_graph(flow: Flow) -> FlowGraph:
    """Describe ``flow``: every node under its trace id, and every wired edge, sub-flows expanded."""
    graph = FlowGraph(flow.name, _kind(flow))
    _describe(flow, "", None, graph)
    return graph


def _describe(flow: Flow, prefix: str, parent: str | None, graph: FlowGraph) -> None:
    ids, _ = flow.node_ids()
    for node, node_id in ids.items():
        qualified = prefix + node_id
        graph.nodes[qualified] = GraphNode(qualified, _kind(node), parent)
        if node.is_flow:
            _describe(node, qualified + "/", qualified, graph)  # type: ignore[arg-type]
    for node, node_id in ids.items():
        for action, successor in node.successors.items():
            graph.edges.append((prefix + node_id, action, prefix + ids[successor]))


def to_mermaid(
    flow: Flow | FlowGraph, *, direction: str = "TD", untested: Collection[Edge] = ()
) -> str:
    """A Mermaid ``flowchart`` of ``flow`` (or of a described graph); edges in ``untested``
    are drawn dashed and coloured."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}.")
    graph = flow if isinstance(flow, FlowGraph) else flow_graph(flow)
    names = _mermaid_ids(graph)
    lines = [f"flowchart {direction}"]
    children: dict[str | None, list[GraphNode]] = {}
    for node in graph.nodes.values():
        children.setdefault(node.parent, []).append(node)
    if graph.kind == "batch-flow":
        # A BatchFlow run on its own: its graph in one subgraph, so the picture says "batch".
        lines.append(f'    subgraph {_unique("batch_" + _safe(graph.name), names)} ["{_label(graph.name)} (batch flow)"]')
        lines.extend("    " + line for line in _declare(None, children, names, 1))
        lines.append("    end")
    else:
        lines.extend(_declare(None, children, names, 1))
    dashed = set(untested)
    styled: list[int] = []
    for index, (source, action, target) in enumerate(graph.edges):
        arrow = "-.->" if (source, action, target) in dashed else "-->"
        if arrow == "-.->":
            styled.append(index)
        lines.append(f'    {names[source]} {arrow}|"{_label(action)}"| {names[target]}')
    if styled:
        lines.append(f"    linkStyle {','.join(map(str, styled))} {UNTESTED_STYLE}")
    return "\n".join(lines) + "\n"


def _declare(
    parent: str | None, children: dict[str | None, list[GraphNode]], names: dict[str, str], depth: int
) -> Iterator[str]:
    pad = "    " * depth
    for node in children.get(parent, []):
        name, label = names[node.id], _label(node.id)
        if node.kind in ("flow", "batch-flow"):
            title = f"{label} (batch flow)" if node.kind == "batch-flow" else label
            yield f'{pad}subgraph {name} ["{title}"]'
            yield from _declare(node.id, children, names, depth + 1)
            yield f"{pad}end"
        elif node.kind == "batch-node":
            yield f'{pad}{name}[["{label}"]]'
        else:
            yield f'{pad}{name}["{label}"]'


def _safe(text: str) -> str:
    return re.sub(r"\W", "_", text, flags=re.ASCII) or "_"


def _unique(candidate: str, taken: dict[str, str]) -> str:
    used = set(taken.values())
    name, n = candidate, 1
    while name in used:
        n += 1
        name = f"{candidate}_{n}"
    return name


def _mermaid_ids(graph: FlowGraph) -> dict[str, str]:
    """A Mermaid-safe identifier per trace id: the id with other characters as ``_``."""
    names: dict[str, str] = {}
    for node_id in graph.nodes:
        candidate = _safe(node_id)
        if candidate.lower() in _KEYWORDS or candidate[0].isdigit():
            candidate = "n_" + candidate
        names[node_id] = _unique(candidate, names)
    return names


def _label(text: str) -> str:
    """``text`` safe inside a quoted Mermaid label: quotes, markup, pipes and anything that
    could read as an entity code are written as Mermaid entity codes."""
    text = re.sub(r"#(?=[\w]*;)", "#35;", text)
    for char, code in (('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("|", "#124;"), ("`", "#96;")):
        text = text.replace(char, code)
    return " ".join(text.split())
