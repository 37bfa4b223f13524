"""A lifecycle method that cannot take the runtime's arguments fails when the node is created."""

from __future__ import annotations

from typing import Any

import pytest

from pocketmesh import BaseNode, Flow
from pocketmesh.errors import PocketMeshError


def test_a_wrong_execute_fails_at_creation_naming_the_expected_signature() -> None:
    class Greet(BaseNode):
        async def execute(self, prep):  # type: ignore[override]
            return prep

    with pytest.raises(TypeError) as caught:
        Greet()
    message = str(caught.value)
    assert "Greet.execute(self, prep)" in message
    assert "execute(self, prep_result, shared, params, attempt)" in message
    assert isinstance(caught.value, PocketMeshError)


@pytest.mark.parametrize(
    ("name", "source", "expected"),
    [
        ("prepare", "def prepare(self, shared): ...", "prepare(self, shared, params)"),
        ("finalize", "async def finalize(self, shared, prep, result): ...", "finalize(self, shared, prep_result, exec_result, params)"),
        ("execute_fallback", "async def execute_fallback(self, prep, error): ...", "execute_fallback(self, prep_result, error, shared, params, attempt)"),
        ("execute_item", "async def execute_item(self, item, *, shared): ...", "execute_item(self, item, shared, params, attempt)"),
        ("execute_item_fallback", "def execute_item_fallback(self, item, error, shared, params): ...", "execute_item_fallback(self, item, error, shared, params, attempt)"),
        ("execute", "async def execute(self, a, b, c, d, e): ...", "execute(self, prep_result, shared, params, attempt)"),
    ],
)
def test_each_lifecycle_method_is_checked(name: str, source: str, expected: str) -> None:
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    cls = type(f"Bad{name.title()}", (BaseNode,), {name: namespace[name]})
    with pytest.raises(TypeError) as caught:
        cls()
    assert f"{cls.__name__}.{name}(" in str(caught.value)
    assert f"define it as {expected}" in str(caught.value)


def test_a_subclass_that_overrides_init_without_super_is_checked_too() -> None:
    class NoSuper(BaseNode):
        def __init__(self, value: int) -> None:
            self.value = value

        def finalize(self, shared):  # type: ignore[override]
            return None

    with pytest.raises(TypeError, match="NoSuper.finalize"):
        NoSuper(1)


def test_flexible_signatures_are_accepted() -> None:
    class Flexible(BaseNode):
        async def prepare(self, *args: Any) -> Any:
            return args

        async def execute(self, prep_result, shared, params, attempt=0, extra=None):  # type: ignore[override]
            return prep_result

        @staticmethod
        def finalize(shared, prep, result, params):  # type: ignore[override]
            return None

        @classmethod
        def execute_fallback(cls, prep, error, shared, params, attempt):  # type: ignore[override]
            return None

    Flexible()
    Flow(Flexible())


def test_a_flow_subclass_is_checked() -> None:
    class MyFlow(Flow):
        async def prepare(self):  # type: ignore[override]
            return None

    with pytest.raises(TypeError, match=r"MyFlow\.prepare\(self\).*prepare\(self, shared, params\)"):
        MyFlow(BaseNode())
