"""OpenTelemetry spans for runs and node executions (extra ``pocketmesh[otel]``).

Every run is a span named ``pocketmesh.run <flow name>``, and every node execution a child span
named ``pocketmesh.node <node id>`` (a sub-flow's span holds its nodes' spans). Spans carry
``pocketmesh.run_id``, ``pocketmesh.node_id`` (node spans) and ``pocketmesh.action`` (the
action the node or run ended with); a failure is recorded on its span as an exception event
with status ERROR. A node's span is the current span while it runs, so spans its own code
makes (an HTTP client's, a model SDK's) nest under it.

pocketmesh never imports OpenTelemetry. A run looks for ``opentelemetry.trace`` among the
modules already imported, which an application that configured tracing has done, and makes
spans only while a real tracer provider is set (``trace.set_tracer_provider(...)``). Without
one, the API's default provider would hand out spans that record nothing; skipping them keeps
a run's cost where it is without tracing: one dictionary lookup per run.
"""

from __future__ import annotations

import sys
from typing import Any

RUN_ID = "pocketmesh.run_id"
NODE_ID = "pocketmesh.node_id"
ACTION = "pocketmesh.action"
INSTRUMENTATION = "pocketmesh"

_cached: tuple[Any, Any] | None = None
"""The last tracer provider seen and the tracer taken from it."""


class Span:
    """One started span, current in its task until :meth:`end`."""

    __slots__ = ("api", "span", "token")

    def __init__(self, api: Any, span: Any) -> None:
        self.api = api
        self.span = span
        self.token = sys.modules["opentelemetry.context"].attach(api.set_span_in_context(span))

    def fail(self, error: BaseException) -> None:
        """Record ``error`` on the span: an exception event and status ERROR."""
        api = self.api
        self.span.record_exception(error)
        self.span.set_status(api.Status(api.StatusCode.ERROR, f"{type(error).__name__}: {error}"))

    def end(self, action: str | None = None) -> None:
        """End the span (recording the ``action`` it ended with, if any) and make the span that
        was current before it current again."""
        if action is not None:
            self.span.set_attribute(ACTION, action)
        try:
            sys.modules["opentelemetry.context"].detach(self.token)
        finally:
            self.span.end()


class Spans:
    """Starts the spans of one run."""

    __slots__ = ("api", "tracer", "run_id")

    def __init__(self, api: Any, tracer: Any, run_id: str) -> None:
        self.api = api
        self.tracer = tracer
        self.run_id = run_id

    def run(self, flow_name: str) -> Span:
        """The span of the run (a child of whatever span is current where the run started)."""
        return Span(self.api, self.tracer.start_span(f"pocketmesh.run {flow_name}", attributes={RUN_ID: self.run_id}))

    def node(self, node_id: str) -> Span:
        """The span of one node execution, a child of the current (run or sub-flow) span."""
        attributes = {RUN_ID: self.run_id, NODE_ID: node_id}
        return Span(self.api, self.tracer.start_span(f"pocketmesh.node {node_id}", attributes=attributes))


def spans_for_run(run_id: str) -> Spans | None:
    """The span factory for a run starting now, or ``None`` when no tracer provider is set."""
    global _cached
    api = sys.modules.get("opentelemetry.trace")
    if api is None:
        return None
    provider = api.get_tracer_provider()
    if isinstance(provider, (api.ProxyTracerProvider, api.NoOpTracerProvider)):
        return None
    cached = _cached
    if cached is None or cached[0] is not provider:
        from . import __version__

        cached = _cached = (provider, provider.get_tracer(INSTRUMENTATION, __version__))
    return Spans(api, cached[1], run_id)
