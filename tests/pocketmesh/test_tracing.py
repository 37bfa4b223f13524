"""OpenTelemetry spans per run and per node, read back from the SDK's in-memory exporter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from pocketmesh import BaseNode, Flow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """A real SDK tracer provider with an in-memory exporter, as the global provider of this test
    (the global one can be set only once per process, so it is swapped in for the test)."""
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    yield memory
    provider.shutdown()


class Boom(BaseNode):
    async def execute(self, prep, shared, params, attempt):  # type: ignore[override]
        raise RuntimeError("the boom node exploded")


class MakesItsOwnSpan(BaseNode):
    async def execute(self, prep, shared, params, attempt):  # type: ignore[override]
        with trace.get_tracer("app").start_as_current_span("app.call"):
            return None


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    return {span.name: span for span in spans}


async def test_a_run_and_its_nodes_are_spans_with_ids_and_actions(exporter: InMemorySpanExporter) -> None:
    ask, handle = BaseNode(name="Ask"), BaseNode(name="Handle")
    boom = Boom()
    inner = Flow(boom, name="Inner")
    ask >> inner
    inner - "error" >> handle
    result = await Flow(ask, name="Support").run(run_id="run-1")
    assert result.status == "completed"

    spans = by_name(exporter.get_finished_spans())
    assert set(spans) == {
        "pocketmesh.run Support", "pocketmesh.node Ask", "pocketmesh.node Inner",
        "pocketmesh.node Inner/Boom", "pocketmesh.node Handle",
    }
    run = spans["pocketmesh.run Support"]
    assert run.parent is None
    assert dict(run.attributes or {}) == {"pocketmesh.run_id": "run-1", "pocketmesh.action": "default"}
    assert run.status.status_code is StatusCode.UNSET
    for name in ("Ask", "Inner", "Handle"):
        assert spans[f"pocketmesh.node {name}"].parent.span_id == run.context.span_id  # type: ignore[union-attr]
    assert spans["pocketmesh.node Inner/Boom"].parent.span_id == spans["pocketmesh.node Inner"].context.span_id  # type: ignore[union-attr]
    assert dict(spans["pocketmesh.node Ask"].attributes or {}) == {
        "pocketmesh.run_id": "run-1", "pocketmesh.node_id": "Ask", "pocketmesh.action": "default",
    }
    failed = spans["pocketmesh.node Inner"]
    assert failed.attributes["pocketmesh.action"] == "error"  # type: ignore[index]
    for span in (failed, spans["pocketmesh.node Inner/Boom"]):
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "RuntimeError: the boom node exploded"
        event = span.events[0]
        assert event.name == "exception"
        assert event.attributes["exception.type"] == "RuntimeError"  # type: ignore[index]
        assert event.attributes["exception.message"] == "the boom node exploded"  # type: ignore[index]


async def test_a_failed_run_is_recorded_on_its_span(exporter: InMemorySpanExporter) -> None:
    result = await Flow(Boom(), name="Failing").run(run_id="run-2")
    assert result.status == "failed"
    spans = by_name(exporter.get_finished_spans())
    run = spans["pocketmesh.run Failing"]
    assert run.status.status_code is StatusCode.ERROR
    assert [e.name for e in run.events] == ["exception"]
    assert "pocketmesh.action" not in (run.attributes or {})
    assert spans["pocketmesh.node Boom"].status.status_code is StatusCode.ERROR


async def test_a_paused_run_ends_its_span_with_input_required(exporter: InMemorySpanExporter) -> None:
    class Ask(BaseNode):
        async def finalize(self, shared, prep, result, params):  # type: ignore[override]
            return "input-required"

    await Flow(Ask(), name="Asking").run()
    run = by_name(exporter.get_finished_spans())["pocketmesh.run Asking"]
    assert run.attributes["pocketmesh.action"] == "input-required"  # type: ignore[index]
    assert run.status.status_code is StatusCode.UNSET


async def test_a_nodes_span_is_current_while_it_runs(exporter: InMemorySpanExporter) -> None:
    sync_node = BaseNode(name="Sync")
    sync_node.execute = lambda prep, shared, params, attempt: trace.get_tracer("app").start_span("app.thread").end()  # type: ignore[method-assign]
    own = MakesItsOwnSpan()
    own >> sync_node
    await Flow(own).run()
    spans = by_name(exporter.get_finished_spans())
    assert spans["app.call"].parent.span_id == spans["pocketmesh.node MakesItsOwnSpan"].context.span_id  # type: ignore[union-attr]
    assert spans["app.thread"].parent.span_id == spans["pocketmesh.node Sync"].context.span_id  # type: ignore[union-attr]


async def test_without_a_tracer_provider_no_span_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[Any] = []
    real = trace.ProxyTracerProvider.get_tracer
    monkeypatch.setattr(trace.ProxyTracerProvider, "get_tracer", lambda *a, **k: made.append(a) or real(*a, **k))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: trace.ProxyTracerProvider())
    result = await Flow(BaseNode()).run()
    assert result.status == "completed" and made == []


def _run(script: str) -> Any:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OTEL_PYTHON_TRACER_PROVIDER", None)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_pocketmesh_imports_no_opentelemetry_itself() -> None:
    loaded = _run(
        """
        import asyncio, json, sys
        from pocketmesh import BaseNode, Flow, SQLitePersistence
        asyncio.run(Flow(BaseNode()).run())
        print(json.dumps(sorted(m for m in sys.modules if m.startswith("opentelemetry"))))
        """
    )
    assert loaded == []


def test_the_global_tracer_provider_set_by_the_application_is_used() -> None:
    names = _run(
        """
        import asyncio, json
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from pocketmesh import BaseNode, Flow

        memory = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        trace.set_tracer_provider(provider)
        asyncio.run(Flow(BaseNode(name="Only"), name="App").run(run_id="r"))
        print(json.dumps([[s.name, dict(s.attributes)] for s in memory.get_finished_spans()]))
        """
    )
    assert names == [
        ["pocketmesh.node Only", {"pocketmesh.run_id": "r", "pocketmesh.node_id": "Only", "pocketmesh.action": "default"}],
        ["pocketmesh.run App", {"pocketmesh.run_id": "r", "pocketmesh.action": "default"}],
    ]
