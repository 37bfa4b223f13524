"""Errors raised by the pocketmesh pytest plugin.

The tree::

    PocketMeshTestingError
    ├── NetworkBlockedError (ConnectionError)   a test tried to reach a non-loopback host
    │   └── BlockedLookupError (socket.gaierror)  ... by name: the lookup fails as DNS would
    ├── UnscriptedCallError (AssertionError)    the fake LLM got a call nothing was scripted for
    ├── ReplyMismatchError (AssertionError)     a scripted reply does not fit the request it met
    ├── UnusedRepliesError (AssertionError)     scripted replies were left over at teardown
    ├── CassetteMissError (LookupError)         a cassette holds no recording for a request
    ├── PersistenceConformanceError (AssertionError)  a backend broke the persistence contract
    └── SimulationError                         a simulation could not be played to its end
        └── SimulationAnswerError (ValueError)  the simulated user or the judge answered out of format

``NetworkBlockedError`` subclasses ``ConnectionError`` so HTTP clients report it as the
connection failure it is. A blocked host *name* raises ``BlockedLookupError``, which is also a
``socket.gaierror``: code written for the real network (``except socket.gaierror``) sees the
failed lookup it expects. The assertion errors make pytest show them as test failures.
"""

from __future__ import annotations

import socket


class PocketMeshTestingError(Exception):
    """Base class of every error the pocketmesh pytest plugin raises on purpose."""


class NetworkBlockedError(PocketMeshTestingError, ConnectionError):
    """A test tried to connect to a host outside loopback while the network guard is on."""

    def __init__(self, host: str, port: int | None = None) -> None:
        self.host = host
        self.port = port
        where = host if port is None else f"{host}:{port}"
        super().__init__(
            f"network access to {where} is blocked in tests (only loopback is allowed). "
            f"Use a fake (the fake_llm fixture), replay a recording with "
            f"@pytest.mark.llm_cassette, or opt this test out with @pytest.mark.allow_network "
            f"(add the host to the pocketmesh_allowed_hosts ini key, or pass "
            f"--pocketmesh-allow-network, to allow it everywhere)."
        )


class BlockedLookupError(NetworkBlockedError, socket.gaierror):
    """A test tried to resolve or reach a host name outside loopback; fails like a DNS miss."""

    def __init__(self, host: str, port: int | None = None) -> None:
        super().__init__(host, port)
        # What a real failed lookup carries, for code that reads it (e.errno == socket.EAI_NONAME).
        self.errno = socket.EAI_NONAME
        self.strerror = str(self.args[0])


class UnscriptedCallError(PocketMeshTestingError, AssertionError):
    """The fake LLM received a request while nothing was scripted to answer it."""


class ReplyMismatchError(PocketMeshTestingError, AssertionError):
    """A scripted fake LLM reply does not fit the request that consumed it: a stream for a plain
    call, or text that is not the JSON a request for structured output asks for."""


class UnusedRepliesError(PocketMeshTestingError, AssertionError):
    """Scripted fake LLM replies were never requested by the code under test."""


class CassetteMissError(PocketMeshTestingError, LookupError):
    """A cassette that may not record has no recorded response for a request."""


class PersistenceConformanceError(PocketMeshTestingError, AssertionError):
    """A persistence backend does not behave as the pocketmesh persistence contract says."""


class SimulationError(PocketMeshTestingError):
    """A simulation could not be played to its end: a model call failed, or the agent did not answer.

    ``transcript`` holds the conversation up to the failure, as ``(role, text)`` pairs.
    """

    def __init__(self, message: str, transcript: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.transcript = list(transcript or [])


class SimulationAnswerError(SimulationError, ValueError):
    """The simulated user's or the judge's answer is not the JSON object it was asked for."""
