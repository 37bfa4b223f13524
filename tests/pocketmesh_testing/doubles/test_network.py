"""The network guard: on by default, loopback allowed, opt-outs by marker, option and ini."""

from __future__ import annotations

import pytest

GUARDED = """
import asyncio, socket, pytest, httpx
from pocketmesh_testing import NetworkBlockedError

def test_httpx_is_blocked():
    with pytest.raises(httpx.ConnectError) as info:
        httpx.get("https://api.example.invalid/v1/models")
    assert isinstance(info.value.__context__ or info.value.__cause__, NetworkBlockedError) or \\
        "api.example.invalid" in str(info.value)

def test_socket_is_blocked():
    with pytest.raises(NetworkBlockedError, match="api.example.invalid.*allow_network"):
        socket.create_connection(("api.example.invalid", 443))
    with pytest.raises(NetworkBlockedError, match="192.0.2.1"):
        socket.socket().connect(("192.0.2.1", 80))  # TEST-NET-1: never routed

@pytest.mark.asyncio
async def test_asyncio_is_blocked():
    with pytest.raises(NetworkBlockedError, match="api.example.invalid"):
        await asyncio.open_connection("api.example.invalid", 443)

def test_loopback_is_allowed():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    with socket.create_connection(("127.0.0.1", port)), socket.create_connection(("localhost", port)):
        pass
    server.close()

@pytest.mark.allow_network
def test_marker_opts_out():
    with pytest.raises(socket.gaierror):  # a real DNS answer: .invalid never resolves
        socket.getaddrinfo("api.example.invalid", 443)
"""


def test_guard_blocks_and_marker_opts_out(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=GUARDED)
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(passed=5)


def test_blocked_error_message_is_readable(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user="""
        import socket
        def test_reaches_out():
            socket.getaddrinfo("api.example.invalid", 443)
        """
    )
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*BlockedLookupError: [[]Errno -2[]] network access to api.example.invalid:443 is blocked in tests*"
        "@pytest.mark.llm_cassette*@pytest.mark.allow_network*",
    ])


@pytest.mark.parametrize(
    ("args", "ini"),
    [(["--pocketmesh-allow-network"], ""), ([], "pocketmesh_network_guard = false"),
     ([], "pocketmesh_allowed_hosts = api.example.invalid")],
    ids=["option", "ini-off", "ini-allowed-host"],
)
def test_guard_can_be_turned_off(pytester: pytest.Pytester, args: list[str], ini: str) -> None:
    pytester.makeini(f"[pytest]\nasyncio_default_fixture_loop_scope = function\n{ini}\n")
    pytester.makepyfile(
        test_user="""
        import socket, pytest
        def test_dns_is_real():
            with pytest.raises(socket.gaierror):
                socket.getaddrinfo("api.example.invalid", 443)
        """
    )
    result = pytester.runpytest_inprocess("-q", *args)
    result.assert_outcomes(passed=1)


def test_guard_is_off_outside_tests() -> None:
    from pocketmesh_testing.doubles.network import guard, is_loopback_host

    assert is_loopback_host("127.0.0.5") and is_loopback_host("::1") and is_loopback_host("localhost")
    assert not is_loopback_host("api.example.invalid") and not is_loopback_host("192.0.2.1")
    with guard.policy(enabled=False):
        guard.check("api.example.invalid")  # no error


def test_a_blocked_lookup_is_a_gaierror_like_a_failed_dns_lookup(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user="""
        import socket, pytest
        from pocketmesh_testing import BlockedLookupError, NetworkBlockedError

        def test_names_fail_as_dns_would():
            with pytest.raises(socket.gaierror) as info:
                socket.getaddrinfo("nowhere.invalid", 80)
            assert isinstance(info.value, NetworkBlockedError) and info.value.errno == socket.EAI_NONAME
            with pytest.raises(socket.gaierror):
                socket.create_connection(("nowhere.invalid", 80))

        def test_handlers_written_for_the_real_network_work():
            try:
                socket.gethostbyname("nowhere.invalid")
            except socket.gaierror as error:
                assert "allow_network" in str(error)  # and it still says how to get out
            else:
                raise AssertionError("the lookup went through")

        def test_ip_addresses_are_refused_as_connections():
            with pytest.raises(ConnectionError) as info:
                socket.socket().connect(("192.0.2.1", 80))
            assert not isinstance(info.value, socket.gaierror)
        """
    )
    pytester.runpytest_inprocess("-q").assert_outcomes(passed=3)
