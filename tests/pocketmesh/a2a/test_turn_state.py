"""A turn continues from the last turn's run record: read once, history appended, an unchanged
record not read again, a task's history stored message by message; and it all stays right
when another server takes turns of the same task."""

from __future__ import annotations

from collections import Counter
from typing import Any

from a2a.server.context import ServerCallContext
from a2a.types import Message, Role, Task, TaskState, TaskStatus

from pocketmesh import Flow, InMemoryPersistence, Persistence, SQLitePersistence
from pocketmesh.a2a import A2ABaseNode, PocketMeshTaskStore
from pocketmesh.a2a.keys import HISTORY
from pocketmesh.persistence.base import UNCHANGED
from tests.pocketmesh.a2a.conftest import in_process, text_message


class Tally(A2ABaseNode):
    """Counts its turns in shared state and answers with the count; always waits for more."""

    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared["turns"] = shared.get("turns", 0) + 1
        self.set_final_response_parts(shared, [self.create_text_part(f"turn {shared['turns']}: {shared['input']}")])
        return "input-required"


class Watched:
    """A backend noting, per run id, every checkpoint load (and whether it found the record
    unchanged) and the shared-state writes of every save."""

    def __init__(self, inner: Persistence) -> None:
        self.inner = inner
        self.loads: Counter[str] = Counter()
        self.unchanged: Counter[str] = Counter()
        self.writes: list[tuple[str, list[str], list[str]]] = []

    async def load_checkpoint(self, run_id: str, **kwargs: Any) -> Any:
        loaded = await self.inner.load_checkpoint(run_id, **kwargs)  # type: ignore[attr-defined]
        self.loads[run_id] += 1
        self.unchanged[run_id] += loaded == UNCHANGED
        return loaded

    async def save_checkpoint(self, run_id: str, *args: Any, **kwargs: Any) -> None:
        pending = args[4] if len(args) > 4 else kwargs.get("shared")
        if pending is not None:
            self.writes.append((run_id, [p[0] for p in pending.puts], [a[0] for a in pending.appends]))
        await self.inner.save_checkpoint(run_id, *args, **kwargs)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def send(served: Any, text: str, task_id: str | None = None) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": "message/send",
            "params": {"message": text_message(text, task_id=task_id), "configuration": {"historyLength": 1}}}
    response = await served.post(body)
    result: dict[str, Any] = response.json()["result"]
    assert result["status"]["state"] == "input-required", response.text
    return result


async def test_a_turn_reads_its_run_once_and_appends_the_history() -> None:
    store = Watched(InMemoryPersistence())
    async with in_process({"tally": Flow(Tally())}, persistence=store) as served:
        task_id = (await send(served, "one"))["id"]
        for text in ("two", "three", "four"):
            before = store.loads[task_id]
            await send(served, text, task_id)
            assert store.loads[task_id] - before == 1  # one read per turn, not one per layer
        assert store.unchanged[task_id] == 3  # and each found the record this server left
    run_writes = [(puts, appends) for run_id, puts, appends in store.writes if run_id == task_id]
    assert all(HISTORY in appends and HISTORY not in puts for puts, appends in run_writes[2:])
    record = await store.inner.load_run(task_id)
    history = record["shared"][HISTORY]
    assert [(m["role"], m["parts"][0]["text"]) for m in history] == [
        ("user", "one"), ("agent", "turn 1: one"), ("user", "two"), ("agent", "turn 2: two"),
        ("user", "three"), ("agent", "turn 3: three"), ("user", "four"),
    ]


async def test_servers_sharing_a_store_take_turns_of_one_task(tmp_path: Any) -> None:
    store = SQLitePersistence(tmp_path / "shared.sqlite")
    async with in_process({"tally": Flow(Tally())}, persistence=store) as first, \
            in_process({"tally": Flow(Tally())}, persistence=store) as second:
        task_id = (await send(first, "a"))["id"]
        await send(second, "b", task_id)
        reply = await send(first, "c", task_id)  # the first server's kept record is stale now
        assert reply["status"]["message"]["parts"][0]["text"] == "turn 3: c"
        again = await send(second, "d", task_id)
        assert again["status"]["message"]["parts"][0]["text"] == "turn 4: d"
    record = await store.load_run(task_id)
    assert [m["parts"][0]["text"] for m in record["shared"][HISTORY] if m["role"] == "user"] == ["a", "b", "c", "d"]
    await store.close()


class Stage(A2ABaseNode):
    """Puts this turn's text beside the notes list it reads, for the next step."""

    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared["pending"] = {"notes": shared.setdefault("notes", []), "text": shared["input"]}
        return "default"


class File(A2ABaseNode):
    """Appends the staged text to the notes list through the staged reference alone."""

    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        pending = shared["pending"]
        pending["notes"].append(pending.pop("text"))
        self.set_final_response_parts(shared, [self.create_text_part(f"{len(pending['notes'])} notes")])
        return "input-required"


def filing_flow() -> Flow:
    stage, file = Stage(), File()
    stage >> file
    file - "input-required" >> stage
    return Flow(stage)


async def test_a_turn_changing_a_list_an_earlier_step_read_is_seen_by_the_other_server(tmp_path: Any) -> None:
    store = SQLitePersistence(tmp_path / "shared.sqlite")
    async with in_process({"notes": filing_flow()}, persistence=store) as first, \
            in_process({"notes": filing_flow()}, persistence=store) as second:
        task_id = (await send(first, "a"))["id"]
        replies = [(await send(served, text, task_id))["status"]["message"]["parts"][0]["text"]
                   for served, text in ((second, "b"), (first, "c"), (second, "d"))]
    assert replies == ["2 notes", "3 notes", "4 notes"]
    record = await store.load_run(task_id)
    assert record["shared"]["notes"] == ["a", "b", "c", "d"]
    await store.close()


def context() -> ServerCallContext:
    return ServerCallContext()


def task_with(n: int) -> Task:
    task = Task(id="t", context_id="c", status=TaskStatus(state=TaskState.TASK_STATE_INPUT_REQUIRED))
    for i in range(n):
        task.history.append(Message(message_id=f"m{i}", role=Role.ROLE_USER if i % 2 == 0 else Role.ROLE_AGENT))
    return task


async def test_a_task_save_appends_its_new_messages() -> None:
    store = Watched(InMemoryPersistence())
    tasks = PocketMeshTaskStore(store)
    for n in (2, 3, 5, 40, 41):
        await tasks.save(task_with(n), context())
    writes = [(sorted(puts), appends) for _run_id, puts, appends in store.writes]
    assert writes[0] == (["head", "history"], [])
    assert writes[1:] == [(["head"], ["history"])] * 4
    assert await tasks.get("t", context()) == task_with(41)
    assert await PocketMeshTaskStore(store.inner).get("t", context()) == task_with(41)  # read from the rows
    # A history that is not the kept one plus new messages is written whole.
    other = task_with(3)
    other.history[2].message_id = "changed"
    await tasks.save(other, context())
    assert sorted(store.writes[-1][1]) == ["head", "history"]
    assert await PocketMeshTaskStore(store.inner).get("t", context()) == other


async def test_a_task_another_store_changed_is_read_afresh() -> None:
    persistence = InMemoryPersistence()
    mine, theirs = PocketMeshTaskStore(persistence), PocketMeshTaskStore(persistence)
    await mine.save(task_with(2), context())
    assert await mine.get("t", context()) == task_with(2)
    await theirs.save(task_with(4), context())
    assert await mine.get("t", context()) == task_with(4)
    peeked = await mine.peek("t", context())
    assert peeked is not None and peeked[0] == task_with(4)
    assert peeked[1] == sum(m.ByteSize() for m in task_with(4).history)


async def test_a_blocking_follow_up_writes_its_task_twice_begun_and_answered() -> None:
    store = Watched(InMemoryPersistence())
    async with in_process({"tally": Flow(Tally())}, persistence=store) as served:
        task_id = (await send(served, "one"))["id"]
        task_run = PocketMeshTaskStore.run_id_for(task_id)
        for text in ("two", "three"):
            before = [w for w in store.writes if w[0] == task_run]
            await send(served, text, task_id)
            turn = [w for w in store.writes if w[0] == task_run][len(before):]
            # Begun: the last answer and this message appended, the head (working) replaced;
            # answered: the head again. No separate write for the message, none for "working".
            assert turn == [(task_run, ["head"], ["history"]), (task_run, ["head"], [])]
    task = await PocketMeshTaskStore(store.inner).get(task_id, context())  # read from the rows
    assert task is not None and [(m.role, m.parts[0].text) for m in task.history] == [
        (Role.ROLE_USER, "one"), (Role.ROLE_AGENT, "turn 1: one"), (Role.ROLE_USER, "two"),
        (Role.ROLE_AGENT, "turn 2: two"), (Role.ROLE_USER, "three"),
    ]
    assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    assert task.status.message.parts[0].text == "turn 3: three"


async def test_a_follow_up_sent_again_is_answered_from_the_task_not_run_again() -> None:
    store = Watched(InMemoryPersistence())
    async with in_process({"tally": Flow(Tally())}, persistence=store) as served:

        async def send_id(text: str, message_id: str, task_id: str | None = None, method: str = "message/send") -> Any:
            body = {"jsonrpc": "2.0", "id": 1, "method": method,
                    "params": {"message": text_message(text, task_id=task_id, message_id=message_id)}}
            response = await served.post(body)
            return response.json()["result"] if method == "message/send" else response.text

        task_id = (await send_id("one", "m-1"))["id"]
        for n in (2, 3, 4, 5):
            # Turn 3 streams: its message reaches the history through the SDK's events.
            await send_id(f"msg {n}", f"m-{n}", task_id, "message/stream" if n == 3 else "message/send")
        writes = len(store.writes)
        # Old messages (their answers long in the history) and the last one (its answer the
        # task's status): none runs a turn, none changes the task.
        for again in ("m-2", "m-3", "m-5"):
            answer = await send_id("again", again, task_id)
            assert answer["status"]["message"]["parts"][0]["text"] == "turn 5: msg 5"
        assert len(store.writes) == writes
        fresh = await send_id("six", "m-6", task_id)
    assert fresh["status"]["message"]["parts"][0]["text"] == "turn 6: six"
