"""What a run logs: steps and retries at DEBUG, handled failures at WARNING, run-ending
failures at ERROR with their traceback and an error id."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pocketmesh import BaseNode, Flow
from tests.pocketmesh.conftest import FakeClock

ROOT = Path(__file__).resolve().parents[2]


class Flaky(BaseNode):
    async def execute(self, prep, shared, params, attempt):  # type: ignore[override]
        if attempt < 2:
            raise ConnectionError(f"attempt {attempt} refused")
        return "ok"


class Boom(BaseNode):
    async def execute(self, prep, shared, params, attempt):  # type: ignore[override]
        raise RuntimeError("the boom node exploded")


class Handler(BaseNode):
    pass


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "pocketmesh" and r.levelno == level]


async def test_each_step_is_logged_at_debug_with_run_node_and_action(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pocketmesh")
    first, second = BaseNode(name="First"), BaseNode(name="Second")
    first >> second
    await Flow(first).run(run_id="run-7")
    steps = [r for r in records(caplog, logging.DEBUG) if "returned" in r.getMessage()]
    assert [r.getMessage().split(" (")[0] for r in steps] == [
        "run run-7: node First returned 'default'",
        "run run-7: node Second returned 'default'",
    ]
    assert [(r.run_id, r.node_id, r.action) for r in steps] == [  # type: ignore[attr-defined]
        ("run-7", "First", "default"),
        ("run-7", "Second", "default"),
    ]


async def test_each_retry_is_logged_at_debug_with_node_attempt_and_error(
    caplog: pytest.LogCaptureFixture, fake_clock: FakeClock
) -> None:
    caplog.set_level(logging.DEBUG, logger="pocketmesh")
    sub = Flow(Flaky().set_options(max_retries=3, wait_seconds=lambda a: 2**a), name="Sub")
    result = await Flow(sub).run(run_id="run-8")
    assert result.status == "completed"
    retries = [r.getMessage() for r in records(caplog, logging.DEBUG) if "attempt" in r.getMessage()]
    assert retries == [
        "run run-8: node Sub/Flaky attempt 1 of 3 failed: ConnectionError: attempt 0 refused; retrying in 1 s",
        "run run-8: node Sub/Flaky attempt 2 of 3 failed: ConnectionError: attempt 1 refused; retrying in 2 s",
    ]


async def test_nothing_is_logged_below_the_loggers_level(caplog: pytest.LogCaptureFixture, fake_clock: FakeClock) -> None:
    caplog.set_level(logging.INFO, logger="pocketmesh")
    await Flow(Flaky().set_options(max_retries=3)).run()
    assert [r for r in caplog.records if r.name == "pocketmesh"] == []


async def test_a_failure_that_ends_the_run_is_logged_at_error_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    result = await Flow(Flow(Boom(), name="Sub")).run(run_id="run-9")
    errors = records(caplog, logging.ERROR)
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert message == f"run run-9 failed at node Sub/Boom (error id {result.error_id}): RuntimeError: the boom node exploded"
    assert errors[0].exc_info is not None and errors[0].exc_info[1] is result.error
    formatted = caplog.handler.format(errors[0])
    assert "Traceback (most recent call last)" in formatted and 'raise RuntimeError("the boom node exploded")' in formatted
    assert records(caplog, logging.WARNING) == []


async def test_run_lifecycle_logs_the_failure_it_raises(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(RuntimeError):
        await Flow(Boom()).run_lifecycle({})
    assert len(records(caplog, logging.ERROR)) == 1


async def test_a_failure_an_error_edge_handles_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    boom = Boom()
    boom - "error" >> Handler()
    result = await Flow(boom).run(run_id="run-10")
    assert result.status == "completed"
    assert records(caplog, logging.ERROR) == []
    warnings = records(caplog, logging.WARNING)
    assert [w.getMessage() for w in warnings] == [
        "run run-10: node Boom failed, handled by an 'error' edge: RuntimeError: the boom node exploded"
    ]


async def test_a_sub_flow_failure_handled_outside_it_is_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    sub = Flow(Boom(), name="Sub")
    sub - "error" >> Handler()
    result = await Flow(sub).run(run_id="run-11")
    assert result.status == "completed" and result.shared["__error"]["node"] == "Sub/Boom"
    assert records(caplog, logging.ERROR) == []
    assert [w.node_id for w in records(caplog, logging.WARNING)] == ["Sub/Boom"]  # type: ignore[attr-defined]


def test_pocketmesh_log_level_debug_prints_steps_and_retries_without_any_logging_setup() -> None:
    script = textwrap.dedent(
        """
        import asyncio
        from pocketmesh import BaseNode, Flow

        class Flaky(BaseNode):
            async def execute(self, prep, shared, params, attempt):
                if attempt == 0:
                    raise ConnectionError("refused")

        asyncio.run(Flow(Flaky().set_options(max_retries=2)).run(run_id="env-run"))
        """
    )
    env = {**os.environ, "POCKETMESH_LOG_LEVEL": "DEBUG", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "run env-run: node Flaky attempt 1 of 2 failed: ConnectionError: refused; retrying in 0 s" in done.stderr
    assert "run env-run: node Flaky returned 'default'" in done.stderr


def test_the_fallback_handler_stays_quiet_once_the_application_configures_logging() -> None:
    script = textwrap.dedent(
        """
        import asyncio, logging, sys
        from pocketmesh import BaseNode, Flow
        logging.basicConfig(stream=sys.stdout, level=logging.DEBUG, format="APP %(message)s")
        asyncio.run(Flow(BaseNode(name="Only")).run(run_id="configured"))
        """
    )
    env = {**os.environ, "POCKETMESH_LOG_LEVEL": "DEBUG", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("run configured: node Only returned") == 1
    assert "run configured" not in done.stderr


