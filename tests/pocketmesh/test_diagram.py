"""flow.to_mermaid(): read back, the diagram holds every wired edge once, labelled with its
action, and the sub-flows and BatchFlows as subgraphs around their nodes."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pocketmesh import BaseNode, BatchFlow, Flow
from pocketmesh.diagram import FlowGraph, flow_graph, to_mermaid
from pocketmesh_testing.properties.wiring import flow_edges

_ENTITIES = {"#quot;": '"', "#lt;": "<", "#gt;": ">", "#124;": "|", "#96;": "`", "#35;": "#"}
NODE = re.compile(r'^\s*(\w+)(\[\[?)"(.*)"\]\]?$')
SUBGRAPH = re.compile(r'^\s*subgraph (\w+) \["(.*)"\]$')
EDGE = re.compile(r'^\s*(\w+) (-->|-\.->)\|"(.*)"\| (\w+)$')


def unescape(label: str) -> str:
    # What Mermaid would take for syntax must not appear raw in a quoted label.
    assert not re.search(r'["<>|`\n]', label), f"unescaped label {label!r}"
    return re.sub(r"#\w+;", lambda m: _ENTITIES[m.group(0)], label)


def read_mermaid(text: str) -> dict[str, Any]:
    """What a Mermaid renderer would see: nodes, subgraphs with their members, edges."""
    lines = text.splitlines()
    assert re.fullmatch(r"flowchart (TD|LR)", lines[0]), lines[0]
    labels: dict[str, str] = {}
    shapes: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    batches: list[str] = []
    open_groups: list[str] = []
    edges: list[tuple[str, str, str, bool]] = []
    styles: list[str] = []
    for line in lines[1:]:
        if match := SUBGRAPH.match(line):
            title = unescape(match[2])
            if title.endswith(" (batch flow)"):
                title = title.removesuffix(" (batch flow)")
                batches.append(title)
            labels[match[1]] = title
            for group in open_groups:
                members[group].append(match[1])
            members[match[1]] = []
            open_groups.append(match[1])
        elif line.strip() == "end":
            open_groups.pop()
        elif match := NODE.match(line):
            labels[match[1]], shapes[match[1]] = unescape(match[3]), match[2]
            for group in open_groups:
                members[group].append(match[1])
        elif match := EDGE.match(line):
            edges.append((match[1], unescape(match[3]), match[4], match[2] == "-.->"))
        elif line.strip().startswith("linkStyle"):
            styles.append(line.strip())
        else:
            raise AssertionError(f"unexpected line {line!r}")
    assert not open_groups
    return {"labels": labels, "shapes": shapes, "members": members, "edges": edges, "styles": styles,
            "batches": batches}


class Pick(BaseNode):
    actions = ("left", "right")


class Items(BaseNode):
    async def prepare(self, shared, params):  # type: ignore[override]
        return [1, 2]

    async def execute_item(self, item, shared, params, attempt):  # type: ignore[no-untyped-def]
        return item


def sample() -> Flow:
    """Branches, a self-loop, repeated names, a sub-flow, a BatchFlow inside it, a batch node."""
    pick, left, right = Pick(), BaseNode(name="Work"), BaseNode(name="Work")
    pick - "left" >> left
    pick - "right" >> right
    pick - "retry" >> pick
    inner_start = BaseNode(name="Check")
    inner_start - "input-required" >> Items(name="Ask")
    batch = BatchFlow(inner_start, name="PerFile")
    review = BaseNode(name="Review")
    review >> batch
    sub = Flow(review, name="Sub")
    left >> sub
    right - 'say "hi" | <b>#1;' >> sub
    sub - "error" >> BaseNode(name="end")
    return Flow(pick, name="Main")


def test_every_wired_edge_is_one_arrow_labelled_with_its_action() -> None:
    flow = sample()
    drawn = read_mermaid(flow.to_mermaid())
    labels = drawn["labels"]
    arrows = [(labels[a], action, labels[b]) for a, action, b, _ in drawn["edges"]]
    assert sorted(arrows) == sorted(flow_edges(flow))
    assert len(arrows) == len(set(arrows)) == 8
    assert ("Work#2", 'say "hi" | <b>#1;', "Sub") in arrows  # escaped, and read back unchanged
    assert not any(dashed for *_, dashed in drawn["edges"]) and drawn["styles"] == []


def test_sub_flows_and_batch_flows_are_subgraphs_around_their_nodes() -> None:
    drawn = read_mermaid(sample().to_mermaid(direction="LR"))
    labels, members = drawn["labels"], drawn["members"]
    groups = {labels[g]: sorted(labels[m] for m in ids) for g, ids in members.items()}
    assert groups == {
        "Sub": ["Sub/PerFile", "Sub/PerFile/Ask", "Sub/PerFile/Check", "Sub/Review"],
        "Sub/PerFile": ["Sub/PerFile/Ask", "Sub/PerFile/Check"],
    }
    assert drawn["batches"] == ["Sub/PerFile"]
    node_ids = {labels[n] for n in drawn["shapes"]}
    assert node_ids == {"Pick", "Work", "Work#2", "end", "Sub/Review", "Sub/PerFile/Check", "Sub/PerFile/Ask"}
    batch_nodes = [labels[n] for n, shape in drawn["shapes"].items() if shape == "[["]
    assert batch_nodes == ["Sub/PerFile/Ask"]
    # Node ids are trace ids, and a lowercase "end" never reaches Mermaid as an identifier.
    assert all(name != "end" for name in drawn["shapes"])


def test_a_batch_flow_drawn_on_its_own_is_one_subgraph() -> None:
    work = BaseNode(name="Work")
    work - "again" >> work
    drawn = read_mermaid(BatchFlow(work, name="Files").to_mermaid())
    assert list(drawn["members"].values()) == [["Work"]]
    assert [drawn["labels"][g] for g in drawn["members"]] == drawn["batches"] == ["Files"]
    assert drawn["edges"] == [("Work", "again", "Work", False)]


def test_untested_edges_are_dashed_and_coloured() -> None:
    flow = sample()
    untested = {("Pick", "retry", "Pick"), ("Sub", "error", "end")}
    drawn = read_mermaid(to_mermaid(flow, untested=untested))
    labels = drawn["labels"]
    dashed = [(labels[a], action, labels[b]) for a, action, b, d in drawn["edges"] if d]
    assert sorted(dashed) == sorted(untested)
    indexes = [i for i, edge in enumerate(drawn["edges"]) if edge[3]]
    (style,) = drawn["styles"]
    assert style.startswith(f"linkStyle {','.join(map(str, indexes))} stroke:#d62728")
    assert "stroke-dasharray" in style


def test_a_described_graph_round_trips_through_json_and_draws_the_same() -> None:
    flow = sample()
    graph = flow_graph(flow)
    again = FlowGraph.from_json(graph.to_json())
    assert again == graph
    assert to_mermaid(again) == flow.to_mermaid()
    merged = FlowGraph.from_json(graph.to_json())
    merged.merge(flow_graph(Flow(BaseNode(name="Other"), name="Main")))
    assert "Other" in merged.nodes and len(merged.edges) == len(graph.edges)


def test_a_bad_direction_is_refused() -> None:
    with pytest.raises(ValueError, match="direction must be one of TD, TB, BT, LR, RL, got 'up'"):
        sample().to_mermaid(direction="up")


def test_a_graph_known_only_by_its_edges_still_draws_its_sub_flows() -> None:
    flow = sample()
    graph = FlowGraph.from_edges("Main", flow_edges(flow))
    drawn = read_mermaid(to_mermaid(graph))
    labels = drawn["labels"]
    assert sorted((labels[a], action, labels[b]) for a, action, b, _ in drawn["edges"]) == sorted(flow_edges(flow))
    groups = {labels[g]: sorted(labels[m] for m in ids) for g, ids in drawn["members"].items()}
    assert groups == {
        "Sub": ["Sub/PerFile", "Sub/PerFile/Ask", "Sub/PerFile/Check", "Sub/Review"],
        "Sub/PerFile": ["Sub/PerFile/Ask", "Sub/PerFile/Check"],
    }
