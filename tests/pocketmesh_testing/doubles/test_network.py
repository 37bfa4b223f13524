"""The network guard: on where the project uses pocketmesh, loopback (and names the hosts file
maps to it) allowed, opt-outs by marker, option and ini.

The runs below are pytester runs in this process; each decides its guard for itself, so this
module's own tests run with this session's guard off (``allow_network``): a block seen inside
is the inner session's doing."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pocketmesh_testing.doubles import network

pytestmark = pytest.mark.allow_network

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
        import pocketmesh  # a project that uses pocketmesh: the guard is on

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
        import pocketmesh  # a project that uses pocketmesh, with the guard turned off

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


GUARD_PROBE = """
import socket
import pytest

def test_probe():
    try:
        socket.getaddrinfo("pocketmesh-guard-probe.invalid", 80)
    except socket.gaierror as error:
        blocked = type(error).__name__ == "BlockedLookupError"
    else:
        blocked = False
    if blocked:  # an address is refused too, before any packet leaves (TEST-NET-1)
        with pytest.raises(ConnectionError) as caught:
            socket.create_connection(("192.0.2.1", 80), timeout=1)
        assert type(caught.value).__name__ == "NetworkBlockedError"
    print("GUARD", "on" if blocked else "off")
"""

HELPERS = """
from pocketmesh import BaseNode, Flow

class Greet(BaseNode):
    pass

def build():
    return Flow(Greet())
"""

EVIDENCE: dict[str, tuple[dict[str, str], str, str]] = {
    # name: (files besides test_probe.py, ini lines, guard expected)
    "imports-pocketmesh": ({"test_flows.py": "import pocketmesh\n\ndef test_x():\n    pass\n"}, "", "on"),
    "imports-the-harness": ({"test_flows.py": "from pocketmesh_testing import FakeLLM\n\ndef test_x():\n    pass\n"},
                            "", "on"),
    "holds-a-flow": ({"helpers.py": HELPERS, "test_flows.py": "from helpers import build\nFLOW = build()\n\n"
                      "def test_x():\n    assert FLOW\n"}, "", "on"),
    "subclasses-a-node": ({"helpers.py": HELPERS, "test_flows.py": "import helpers\n\nclass Mine(helpers.Greet):\n"
                           "    pass\n\ndef test_x():\n    pass\n"}, "", "on"),
    "harness-fixture": ({"test_flows.py": "def test_x(memory_persistence):\n    pass\n"}, "", "on"),
    "harness-marker": ({"test_flows.py": "import pytest\n\n@pytest.mark.flow_property\ndef test_x():\n    pass\n"},
                       "", "on"),
    "scenario-file": ({"scenarios/hello.yaml": "agent: pocketmesh.examples.greeting:flows\nskill: greeting\n"
                       "turns:\n  - user: Dana\n    expect: {state: input-required}\n"}, "", "on"),
    "ini-on": ({}, "pocketmesh_network_guard = true", "on"),
    "nothing": ({"test_other.py": "import json\n\ndef test_x():\n    assert json.dumps(1)\n"}, "", "off"),
    "own-persistence-fixture": ({"test_other.py": "import pytest\n\n@pytest.fixture\ndef persistence():\n"
                                 "    return {}\n\ndef test_x(persistence):\n    assert persistence == {}\n"}, "", "off"),
    "allow-network-only": ({"test_other.py": "import pytest\n\n@pytest.mark.allow_network\ndef test_x():\n"
                            "    pass\n"}, "", "off"),
    "ini-off": ({"test_flows.py": "import pocketmesh\n\ndef test_x():\n    pass\n"},
                "pocketmesh_network_guard = false", "off"),
}


@pytest.mark.parametrize("case", sorted(EVIDENCE))
def test_the_guard_applies_where_the_project_uses_pocketmesh(pytester: pytest.Pytester, case: str) -> None:
    files, ini, expected = EVIDENCE[case]
    pytester.makeini(f"[pytest]\nasyncio_default_fixture_loop_scope = function\n{ini}\n")
    pytester.makepyfile(test_probe=GUARD_PROBE)
    for name, text in files.items():
        (pytester.path / name).parent.mkdir(exist_ok=True)
        (pytester.path / name).write_text(text)
    result = pytester.runpytest_inprocess("-s", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([f"*GUARD {expected}*"])


def test_the_option_turns_the_guard_off_in_a_project_that_uses_pocketmesh(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_probe=GUARD_PROBE, test_flows="import pocketmesh\n\ndef test_x():\n    pass\n")
    result = pytester.runpytest_inprocess("-s", "-p", "no:cacheprovider", "--pocketmesh-allow-network")
    result.stdout.fnmatch_lines(["*GUARD off*"])


def test_names_the_hosts_file_maps_to_loopback_are_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(
        "127.0.0.1 localhost\n127.0.1.1 build-box build-box.lan  # the machine's own name\n"
        "::1 ip6-box\n10.0.0.7 db.lan\n127.0.0.1 split.lan\n10.0.0.8 split.lan\n# 127.0.0.1 commented.lan\n"
    )
    monkeypatch.setattr(network, "HOSTS_FILE", str(hosts))
    assert network.is_loopback_host("build-box") and network.is_loopback_host("BUILD-BOX.lan.")
    assert network.is_loopback_host("ip6-box")
    assert not network.is_loopback_host("db.lan")  # a private address is not this machine
    assert not network.is_loopback_host("split.lan")  # one of its addresses is elsewhere
    assert not network.is_loopback_host("commented.lan")
    assert not network.is_loopback_host("api.example.invalid")
    with network.guard.policy(enabled=True):
        network.guard.check("build-box", 80)  # allowed, and answered from the file, not DNS
        with pytest.raises(socket.gaierror):
            network.guard.check("db.lan", 80)
    # An edited hosts file is read again.
    hosts.write_text("10.0.0.9 build-box\n")
    assert not network.is_loopback_host("build-box")


def _machine_name_on_loopback() -> str:
    name = socket.gethostname()
    addresses = network.hosts_file_addresses().get(name.lower())
    if not addresses or not all(network.is_loopback_host(a) for a in addresses):
        pytest.skip(f"{network.HOSTS_FILE} does not map this machine's name {name!r} to loopback")
    return name


def test_the_machine_name_resolves_under_the_guard(pytester: pytest.Pytester) -> None:
    name = _machine_name_on_loopback()
    pytester.makepyfile(test_user=f"""
        import socket
        import pocketmesh  # a project that uses pocketmesh: the guard is on

        def test_own_name():
            assert socket.gethostname() == {name!r}
            address = socket.gethostbyname(socket.gethostname())
            assert address.startswith("127.")
            server = socket.create_server((address, 0))
            with socket.create_connection((socket.gethostname(), server.getsockname()[1]), timeout=5):
                pass
            server.close()
    """)
    pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider").assert_outcomes(passed=1)
