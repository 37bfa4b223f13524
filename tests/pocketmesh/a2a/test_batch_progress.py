"""A served flow with a batch node and a BatchFlow streams a working status per item."""

from __future__ import annotations

from typing import Any

from pocketmesh import BaseNode, BatchFlow, Flow
from pocketmesh.a2a import A2ABaseNode, create_a2a_client

from .conftest import serving


class Resize(BaseNode):
    """A batch node: one item per image."""

    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> list[str]:
        return ["cat.png", "dog.png"]

    async def execute_item(self, item: str, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> str:
        return item.replace(".png", "-small.png")

    async def finalize(self, shared: dict[str, Any], prep: Any, result: list[str], params: dict[str, Any]) -> None:
        shared["small"] = result


class Publish(A2ABaseNode):
    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        shared.setdefault("published", []).append(params["site"])
        self.set_final_response_parts(shared, [self.create_text_part(", ".join(shared["published"]))])
        return "complete"


class Sites(BatchFlow):
    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> list[dict[str, str]]:
        return [{"site": "blog"}, {"site": "shop"}]


async def test_each_item_and_each_set_is_streamed_as_a_working_status() -> None:
    resize = Resize()
    resize >> Sites(Publish(), name="Publish")
    async with serving({"images": Flow(resize)}) as served:
        async with await create_a2a_client(served.base_url) as client:
            events = [e async for e in client.send_message_stream("go", skill="images")]
    working = [e.metadata["pocketmesh"] for e in events if e.state == "working"]
    items = [(w["node"], w["item"], w["message"]) for w in working if "item" in w]
    assert items == [
        ("Resize", 0, "Resize: item 1 of 2: 'cat.png'"),
        ("Resize", 1, "Resize: item 2 of 2: 'dog.png'"),
        ("Publish", 0, "Publish: item 1 of 2: {'site': 'blog'}"),
        ("Publish", 1, "Publish: item 2 of 2: {'site': 'shop'}"),
    ]
    assert [w["node"] for w in working if "item" not in w] == ["Resize", "Publish/Publish", "Publish/Publish"]
    assert (events[-1].state, events[-1].text) == ("completed", "blog, shop")
