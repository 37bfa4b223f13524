"""A project that knows nothing of pocketmesh gets the same outcomes with the plugin installed as
with ``-p no:pocketmesh``: its asyncio strict mode, its own YAML under ``scenarios/``, its
network code (no guard: lookups and connection failures are the resolver's own) and its
pytest-recording cassettes all behave as they would."""

from __future__ import annotations

import re
import socket

import pytest

from pocketmesh_testing.doubles.loopback import free_port
from pocketmesh_testing.doubles.network import hosts_file_addresses, is_loopback_host

INI = "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"

ASYNC_TESTS = """
import asyncio
import pytest

async def test_unmarked_coroutine():  # strict mode: pytest-asyncio leaves it alone, so it fails
    await asyncio.sleep(0)

@pytest.mark.asyncio
async def test_marked_coroutine():
    await asyncio.sleep(0)
"""

GAME_DATA = {
    "levels.yaml": "levels:\n  - {name: moat, enemies: 3}\n  - {name: keep, enemies: 9}\n",
    "campaign.yaml": "scenarios:\n  - {name: siege, map: castle, turns_allowed: 12}\n  - {name: raid, map: village}\n",
    "replay.yaml": "turns:\n  - {player: 1, move: e4}\n  - {player: 2, move: e5}\n",
    "notes.yaml": "title: [this file is broken YAML\n",
}

DATA_TESTS = """
import pathlib
import yaml

HERE = pathlib.Path(__file__).parent / "scenarios"

def test_the_campaign_has_two_scenarios():
    assert [s["name"] for s in yaml.safe_load((HERE / "campaign.yaml").read_text())["scenarios"]] == ["siege", "raid"]

def test_replays_alternate_players():
    assert [t["player"] for t in yaml.safe_load((HERE / "replay.yaml").read_text())["turns"]] == [1, 2]
"""

DNS_TESTS = """
import socket
import pytest

def test_an_unknown_host_raises_gaierror():
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("nowhere.invalid", 80)

def lookup_or_none(host):
    try:
        return socket.gethostbyname(host)
    except socket.gaierror:
        return None

def test_code_written_for_failed_lookups_keeps_working():
    assert lookup_or_none("nowhere.invalid") is None

def test_an_outside_service_that_cannot_be_reached_fails_as_the_network_fails():
    with pytest.raises(socket.gaierror) as caught:
        socket.create_connection(("service.example.invalid", 443), timeout=5)
    assert type(caught.value) is socket.gaierror  # the resolver's own error, nothing in between

def test_the_machine_name_resolves():
    assert socket.gethostbyname({machine!r})
"""

RECORDED_TESTS = """
import http.server
import json
import os
import threading

import httpx
import pytest

PORT = {port}

class Items(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({{"items": [1, 2, 3]}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

@pytest.fixture
def upstream():
    if not os.environ.get("UPSTREAM"):
        yield  # replay: nothing listens any more
        return
    server = http.server.HTTPServer(("127.0.0.1", PORT), Items)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield
    server.shutdown()
    server.server_close()

@pytest.mark.vcr
def test_items_come_from_the_recording(upstream):
    assert httpx.get(f"http://127.0.0.1:{{PORT}}/items").json() == {{"items": [1, 2, 3]}}
"""

def machine_name() -> str:
    """This machine's name when the hosts file maps it to loopback (no DNS query either way), else localhost."""
    name = socket.gethostname()
    addresses = hosts_file_addresses().get(name.lower())
    return name if addresses and all(is_loopback_host(a) for a in addresses) else "localhost"


OUTCOME = re.compile(r"^(\S+::\S+) (PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)\b")


@pytest.fixture
def unrelated(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project with strict asyncio, game data in scenarios/, DNS error handling and pytest-recording cassettes."""
    pytester.makeini(INI)
    (pytester.path / "scenarios").mkdir()
    for name, text in GAME_DATA.items():
        (pytester.path / "scenarios" / name).write_text(text)
    pytester.makepyfile(test_async=ASYNC_TESTS, test_data=DATA_TESTS, test_dns=DNS_TESTS.replace("{machine!r}", repr(machine_name())),
                        test_recorded=RECORDED_TESTS.format(port=free_port()))
    # Record the cassette for real with pytest-recording, the plugin out of the way.
    monkeypatch.setenv("UPSTREAM", "1")
    recorded = pytester.runpytest_subprocess("-p", "no:pocketmesh", "-p", "no:cacheprovider", "--record-mode=once",
                                             "test_recorded.py")
    recorded.assert_outcomes(passed=1)
    monkeypatch.delenv("UPSTREAM")
    assert (pytester.path / "cassettes" / "test_recorded" / "test_items_come_from_the_recording.yaml").is_file()
    return pytester


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    return {m.group(1): m.group(2) for line in result.outlines if (m := OUTCOME.match(line))}


def failure_reports(result: pytest.RunResult) -> list[str]:
    """The FAILURES section as printed, between its header and the short summary."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "FAILURES" in line)
    end = next(i for i, line in enumerate(lines) if "short test summary info" in line)
    return lines[start:end]


def test_an_unrelated_project_gets_the_same_outcomes_with_and_without_the_plugin(unrelated: pytest.Pytester) -> None:
    # Subprocesses: this test's own plugin (its network guard) must not reach into the runs.
    args = ("-v", "-p", "no:cacheprovider", "--record-mode=none")
    with_plugin = unrelated.runpytest_subprocess(*args)
    without_plugin = unrelated.runpytest_subprocess(*args, "-p", "no:pocketmesh")
    assert "pocketmesh" not in without_plugin.stdout.str()  # the baseline really ran without it
    assert outcomes(with_plugin) == outcomes(without_plugin), with_plugin.stdout.str()
    assert with_plugin.parseoutcomes() == without_plugin.parseoutcomes()
    # Failures read the same too, line for line (the unmarked coroutine's among them).
    assert failure_reports(with_plugin) == failure_reports(without_plugin)
    assert outcomes(with_plugin) == {
        "test_async.py::test_unmarked_coroutine": "FAILED",
        "test_async.py::test_marked_coroutine": "PASSED",
        "test_data.py::test_the_campaign_has_two_scenarios": "PASSED",
        "test_data.py::test_replays_alternate_players": "PASSED",
        "test_dns.py::test_an_unknown_host_raises_gaierror": "PASSED",
        "test_dns.py::test_code_written_for_failed_lookups_keeps_working": "PASSED",
        "test_dns.py::test_an_outside_service_that_cannot_be_reached_fails_as_the_network_fails": "PASSED",
        "test_dns.py::test_the_machine_name_resolves": "PASSED",
        "test_recorded.py::test_items_come_from_the_recording": "PASSED",
    }


def test_the_plugin_lists_only_its_own_cassettes_as_unused(unrelated: pytest.Pytester) -> None:
    result = unrelated.runpytest_subprocess("-q", "-p", "no:cacheprovider", "--record-mode=none",
                                            "--pocketmesh-unused-cassettes", "test_recorded.py")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*pocketmesh unused cassettes*", "no unused cassettes"])
