"""Import paths of flows, factories and dicts of flows, for kept examples that must replay."""

from __future__ import annotations

from pocketmesh import BaseNode, Flow
from pocketmesh.examples import greeting, llm
from pocketmesh_testing.properties.references import import_path_of, resolve


def test_module_attributes_dict_entries_and_factories_are_found() -> None:
    assert import_path_of(greeting.flows) == "pocketmesh.examples.greeting:flows"
    assert import_path_of(dict(greeting.flows)) == "pocketmesh.examples.greeting:flows"  # a copy of it
    assert import_path_of(llm.flows["stream"]) == "pocketmesh.examples.llm:flows.stream"
    assert resolve("pocketmesh.examples.llm:flows.stream") is llm.flows["stream"]
    assert import_path_of(greeting.build_flow) == "pocketmesh.examples.greeting:build_flow"


def test_a_fresh_flow_is_traced_to_the_function_that_builds_it() -> None:
    assert import_path_of(greeting.build_flow()) == "pocketmesh.examples.greeting:build_flow"


def test_a_flow_nothing_can_import_has_no_path() -> None:
    def local() -> Flow:
        return Flow(BaseNode(name="Alone"), name="Alone")

    assert import_path_of(local) is None  # defined inside a function
    assert import_path_of(local()) is None
