"""``MODULE:ATTR`` targets: a bad one is refused naming what is wrong and how to write it."""

from __future__ import annotations

import pytest

from pocketmesh.examples import greeting
from pocketmesh.targets import attribute_of, split_target


def test_a_target_is_split_at_its_colon() -> None:
    assert split_target("pkg.mod:obj.attr", "x:y") == ("pkg.mod", "obj.attr")


@pytest.mark.parametrize("spec", ["pkg.mod", ":flows", "pkg.mod:"])
def test_a_target_without_both_halves_is_refused_with_an_example(spec: str) -> None:
    with pytest.raises(ValueError, match=r"expected MODULE:ATTR, got .*; e\.g\. app\.agent:flows"):
        split_target(spec, "app.agent:flows")


def test_a_dotted_attribute_is_followed() -> None:
    assert attribute_of(greeting, "flows", "g:flows") is greeting.flows
    assert attribute_of(greeting, "flows.values", "g:flows.values") == greeting.flows.values


def test_keys_are_followed_only_when_asked() -> None:
    skill = next(iter(greeting.flows))
    assert attribute_of(greeting, f"flows.{skill}", "spec", keys=True) is greeting.flows[skill]
    with pytest.raises(AttributeError, match=rf"{skill!r} is not an attribute of dict"):
        attribute_of(greeting, f"flows.{skill}", "spec")


def test_a_missing_step_is_named_with_the_target() -> None:
    with pytest.raises(AttributeError) as error:
        attribute_of(greeting, "flows.nokey", "pocketmesh.examples.greeting:flows.nokey", keys=True)
    assert str(error.value) == (
        "'pocketmesh.examples.greeting' has no attribute 'flows.nokey': 'nokey' is neither an attribute nor a key "
        "of dict; check the name after the colon in 'pocketmesh.examples.greeting:flows.nokey'"
    )
