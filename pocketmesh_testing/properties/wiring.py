"""Static facts about a flow's wiring: the actions each node can take, its edges, dead ends.

Sub-flows are expanded: their nodes appear under qualified ids (``Sub/Inner``), as in traces.

Wiring shows some bugs for certain (a declared action wired nowhere raises
``UnknownActionError`` when returned) and others only as suspicions: a loop with no wired exit
still ends when a node in it returns the reserved ``"complete"`` or ``"input-required"``, which
no wiring shows. :attr:`WiringProblem.certain` tells them apart.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from pocketmesh import BaseNode, Flow

__all__ = [
    "Edge",
    "WiringProblem",
    "WiringReport",
    "assert_wiring",
    "check_wiring",
    "declared_actions",
    "flow_edges",
    "iter_nodes",
    "node_actions",
]

ERROR = "error"
INPUT_REQUIRED = "input-required"
COMPLETE = "complete"
DEFAULT = "default"
_ROUTING_EXEMPT = frozenset({ERROR, INPUT_REQUIRED})

Edge = tuple[str, str, str]
"""``(qualified node id, action, qualified successor id)``."""


def declared_actions(node: BaseNode) -> tuple[str, ...]:
    """The actions a node declares through an ``actions`` attribute (e.g. ``actions = ("a", "b")``)."""
    declared = getattr(node, "actions", ())
    if isinstance(declared, str) or not isinstance(declared, Sequence) or not all(
        isinstance(a, str) and a for a in declared
    ):
        raise TypeError(
            f"{node.name}.actions must be a tuple of non-empty action names, got {declared!r}; "
            f"write e.g. actions = ('approve', 'revise')."
        )
    return tuple(declared)


def node_actions(node: BaseNode, extra: Sequence[str] = ()) -> tuple[str, ...]:
    """Every action ``node`` can return: wired, declared and ``extra`` ones, ``error`` if handled."""
    seen: dict[str, None] = {}
    for action in (*node.successors, *declared_actions(node), *extra):
        seen.setdefault(action, None)
    return tuple(seen)


def iter_nodes(flow: Flow, prefix: str = "") -> Iterator[tuple[str, BaseNode]]:
    """Each node of ``flow`` with its qualified id, sub-flows' inner nodes included."""
    ids, _ = flow.node_ids()
    for node, node_id in ids.items():
        qualified = prefix + node_id
        yield qualified, node
        if isinstance(node, Flow):
            yield from iter_nodes(node, qualified + "/")


def flow_edges(flow: Flow, prefix: str = "") -> list[Edge]:
    """Every wired edge of ``flow`` and of its sub-flows, with qualified ids."""
    ids, _ = flow.node_ids()
    edges = [(prefix + ids[n], a, prefix + ids[s]) for n in ids for a, s in n.successors.items()]
    for node, node_id in ids.items():
        if isinstance(node, Flow):
            edges.extend(flow_edges(node, prefix + node_id + "/"))
    return edges


def can_end(node: BaseNode) -> bool:
    """True if some action of ``node`` ends (or pauses) the run at its level."""
    routed = [a for a in node.successors if a not in _ROUTING_EXEMPT]
    if not routed or INPUT_REQUIRED in node.successors:
        return True
    return any(a in (COMPLETE, INPUT_REQUIRED) for a in declared_actions(node))


@dataclass(frozen=True)
class WiringProblem:
    """One thing wrong with a flow's wiring."""

    kind: str
    node: str
    message: str
    certain: bool = True
    """False when the node may still end the run by returning a reserved action itself."""


@dataclass
class WiringReport:
    """What :func:`check_wiring` found."""

    flow: str
    problems: list[WiringProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    @property
    def certain_problems(self) -> list[WiringProblem]:
        """The problems wiring proves (not those a reserved action may get around)."""
        return [p for p in self.problems if p.certain]

    def __str__(self) -> str:
        if self.ok:
            return f"flow {self.flow!r}: wiring ok"
        lines = [f"flow {self.flow!r} has {len(self.problems)} wiring problem(s):"]
        lines.extend(f"  - {p.message}" for p in self.problems)
        return "\n".join(lines)


def check_wiring(flow: Flow) -> WiringReport:
    """Find nodes that cannot reach an end, and declared actions nothing is wired to."""
    report = WiringReport(flow.name)
    _check_level(flow, "", report)
    return report


def assert_wiring(flow: Flow) -> None:
    """Raise ``AssertionError`` listing every wiring problem of ``flow``."""
    report = check_wiring(flow)
    if not report.ok:
        raise AssertionError(str(report))


def _check_level(flow: Flow, prefix: str, report: WiringReport) -> None:
    ids, _ = flow.node_ids()
    for node, node_id in ids.items():
        routed = [a for a in node.successors if a not in _ROUTING_EXEMPT]
        for action in declared_actions(node):
            if action not in node.successors and routed and action not in (COMPLETE, INPUT_REQUIRED):
                report.problems.append(
                    WiringProblem(
                        "unwired-action",
                        prefix + node_id,
                        f"node {prefix + node_id!r} declares action {action!r}, but nothing is wired to "
                        f"it (wired: {', '.join(map(repr, routed))}); returning it raises "
                        f"UnknownActionError. Wire it: node.connect_action({action!r}, next_node).",
                    )
                )
    ending = {n for n in ids if can_end(n)}
    reach_end = _reaching(ids, ending)
    for node, node_id in ids.items():
        if node not in reach_end:
            trapped = sorted(ids[n] for n in _forward(node))
            report.problems.append(
                WiringProblem(
                    "no-exit",
                    prefix + node_id,
                    f"node {prefix + node_id!r} cannot reach an end: every path from it stays among "
                    f"{', '.join(prefix + t for t in trapped)}, unless a node there returns 'complete' or "
                    f"'input-required' itself. Wire an exit action out of the loop (to a node with no "
                    f"successors), or declare the reserved action it returns: actions = (..., 'complete').",
                    certain=False,
                )
            )
        if isinstance(node, Flow):
            _check_level(node, prefix + node_id + "/", report)


def _forward(start: BaseNode) -> set[BaseNode]:
    seen: set[BaseNode] = set()
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node not in seen:
            seen.add(node)
            queue.extend(node.successors.values())
    return seen


def _reaching(ids: Mapping[BaseNode, str], targets: set[BaseNode]) -> set[BaseNode]:
    predecessors: dict[BaseNode, list[BaseNode]] = {n: [] for n in ids}
    for node in ids:
        for succ in node.successors.values():
            predecessors.setdefault(succ, []).append(node)
    seen = set(targets)
    queue = deque(targets)
    while queue:
        for pred in predecessors.get(queue.popleft(), []):
            if pred not in seen:
                seen.add(pred)
                queue.append(pred)
    return seen


def exit_actions(flow: Flow) -> dict[str, str]:
    """Per qualified node id, the action on a shortest path to an end (for leaving loops)."""
    chosen: dict[str, str] = {}
    _exit_level(flow, "", chosen)
    return chosen


def _exit_level(flow: Flow, prefix: str, chosen: dict[str, str]) -> None:
    ids, _ = flow.node_ids()
    distance = {n: 0 for n in ids if can_end(n)}
    queue = deque(distance)
    predecessors: dict[BaseNode, list[BaseNode]] = {}
    for node in ids:
        for succ in node.successors.values():
            predecessors.setdefault(succ, []).append(node)
    while queue:
        node = queue.popleft()
        for pred in predecessors.get(node, []):
            if pred not in distance:
                distance[pred] = distance[node] + 1
                queue.append(pred)
    for node, node_id in ids.items():
        if distance.get(node, 0) > 0:
            options = [(distance.get(s, 1 << 30), a) for a, s in node.successors.items() if a not in _ROUTING_EXEMPT]
            if options:
                chosen[prefix + node_id] = min(options)[1]
        if isinstance(node, Flow):
            _exit_level(node, prefix + node_id + "/", chosen)
