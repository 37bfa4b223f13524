"""Wiring nodes together, node ids, options."""

from __future__ import annotations

import pytest

import pocketmesh
from pocketmesh import ActionKey, BaseNode, Flow
from pocketmesh.errors import PocketMeshError


class Alpha(BaseNode):
    pass


class Beta(BaseNode):
    pass


def test_all_is_sorted_and_each_name_is_the_runtime_own_object() -> None:
    assert pocketmesh.__all__ == sorted(pocketmesh.__all__)
    from pocketmesh import errors, flow, node, persistence, results, runs, stepper, types

    # The names a flow is built and run with are the very objects the runtime uses.
    assert pocketmesh.BaseNode is node.BaseNode and pocketmesh.Flow is flow.Flow
    assert issubclass(pocketmesh.Flow, pocketmesh.BaseNode) and issubclass(pocketmesh.BatchFlow, pocketmesh.Flow)
    assert pocketmesh.FlowStepper is stepper.FlowStepper and pocketmesh.RunRecord is runs.RunRecord
    assert pocketmesh.RunResult is results.RunResult and pocketmesh.TraceStep is results.TraceStep
    assert (pocketmesh.Action, pocketmesh.Params, pocketmesh.SharedState) == (types.Action, types.Params, types.SharedState)
    for name in ("InMemoryPersistence", "SQLitePersistence", "PostgresPersistence", "RedisPersistence"):
        assert getattr(pocketmesh, name) is getattr(persistence, name)
        assert all(callable(getattr(getattr(pocketmesh, name), m, None)) for m in
                   ("save_run", "load_run", "save_step", "list_runs", "delete_run")), name
    exported_errors = [name for name in pocketmesh.__all__ if name.endswith("Error")]
    assert "PocketMeshError" in exported_errors
    for name in exported_errors:
        assert getattr(pocketmesh, name) is getattr(errors, name)
        assert issubclass(getattr(pocketmesh, name), errors.PocketMeshError), name


def test_connect_helpers_return_the_target() -> None:
    a, b, c, d = Alpha(), Beta(), Alpha(), Beta()
    assert a.connect_to(b) is b
    assert b.connect_action("x", c) is c
    assert (c >> d) is d
    key = d - "y"
    assert isinstance(key, ActionKey)
    assert (key >> a) is a
    assert a.successors == {"default": b}
    assert d.successors == {"y": a}


def test_wiring_an_action_twice_is_a_value_error_naming_both_nodes() -> None:
    a, b, c = Alpha(), Beta(), Beta(name="Other")
    a - "go" >> b
    with pytest.raises(ValueError, match=r"'go' of node 'Alpha' is already wired to 'Beta'") as info:
        a - "go" >> c
    assert isinstance(info.value, PocketMeshError)
    assert a.successors["go"] is b


@pytest.mark.parametrize("action", ["", None, 3])
def test_bad_actions_are_rejected(action: object) -> None:
    a, b = Alpha(), Beta()
    expected = ValueError if action == "" else TypeError
    with pytest.raises(expected):
        a.connect_action(action, b)  # type: ignore[arg-type]
    assert a.successors == {}


def test_wiring_to_something_not_a_node_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="can only be wired to a node"):
        Alpha() >> "nope"  # type: ignore[operator]


def test_names_default_to_the_class_name() -> None:
    assert Alpha().name == "Alpha"
    assert Alpha(name="custom").name == "custom"
    assert BaseNode().name == "BaseNode"


def test_node_ids_are_unique_and_stable() -> None:
    first, second, third, other = Alpha(), Alpha(), Alpha(), Beta()
    first >> other
    other - "back" >> second
    second >> third
    flow = Flow(first)
    ids, by_id = flow.node_ids()
    assert [ids[n] for n in (first, other, second, third)] == ["Alpha", "Beta", "Alpha#2", "Alpha#3"]
    assert by_id["Alpha#2"] is second
    # same wiring, same ids, every time
    assert Flow(first).node_ids()[0] == ids


def test_ids_follow_wiring_made_after_the_flow_was_built() -> None:
    a = Alpha()
    flow = Flow(a)
    assert list(flow.node_ids()[1]) == ["Alpha"]
    a - "error" >> Alpha()
    assert list(flow.node_ids()[1]) == ["Alpha", "Alpha#2"]


def test_edges_lists_every_wired_action() -> None:
    a, b = Alpha(), Beta()
    a - "x" >> b
    b - "back" >> a
    assert sorted(Flow(a).edges()) == [("Alpha", "x", "Beta"), ("Beta", "back", "Alpha")]


@pytest.mark.parametrize(
    "options",
    [{"max_retries": 0}, {"wait_seconds": -1}, {"max_concurrency": 0}, {"max_retries": 1.5}],
)
def test_invalid_options_are_value_errors(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Alpha().set_options(**options)  # type: ignore[arg-type]


def test_set_params_and_options_chain() -> None:
    node = Alpha().set_params({"a": 1}).set_options(max_retries=3, wait_seconds=lambda a: a)
    assert node.params == {"a": 1}
    assert node.max_retries == 3


def test_flow_needs_a_node_and_a_positive_step_limit() -> None:
    with pytest.raises(TypeError, match="start node"):
        Flow("start")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_steps"):
        Flow(Alpha(), max_steps=0)
