"""`async def` tests that use the harness run without asyncio configuration; other async tests,
and a mode the user chose, are left exactly as they are without the plugin."""

from __future__ import annotations

import pytest

USER_TESTS = """
import asyncio, pytest

def asyncio_marks(request):
    return len(list(request.node.iter_markers("asyncio")))

async def test_with_a_harness_fixture(request, memory_persistence):
    await asyncio.sleep(0)
    assert asyncio_marks(request) == 1

@pytest.mark.llm_cassette(record_mode="none")
async def test_with_a_harness_marker(request):
    assert asyncio_marks(request) == 1

async def test_without_the_harness(request):
    assert asyncio_marks(request) == 1  # left to pytest-asyncio's own mode

@pytest.mark.asyncio
async def test_already_marked(request):
    assert asyncio_marks(request) == 1

class TestInClass:
    async def test_method(self, request, fake_llm):
        fake_llm.reply("x")
        answer = await fake_llm.openai_client().chat.completions.create(model="m", messages=[])
        assert answer.choices[0].message.content == "x"
        assert asyncio_marks(request) == 1

async def helper_not_a_test():
    return None

def test_helper_left_alone():
    assert not hasattr(helper_not_a_test, "pytestmark")
"""


@pytest.mark.parametrize("mode", ["unset", "auto"])
def test_coroutine_tests_of_the_harness_run_without_asyncio_configuration(pytester: pytest.Pytester, mode: str) -> None:
    setting = "" if mode == "unset" else f"asyncio_mode = {mode}\n"
    pytester.makeini(f"[pytest]\n{setting}asyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_inprocess("-q")
    if mode == "auto":
        result.assert_outcomes(passed=6)
        return
    # Unconfigured, an async test that does not use the harness fails as it does without the plugin.
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(["FAILED test_user.py::test_without_the_harness - Failed: async def functions a*"])
    without = pytester.runpytest_inprocess("-q", "-p", "no:pocketmesh", "-k", "without_the_harness")
    without.assert_outcomes(failed=1)


STRICT_USER_TESTS = """
import pytest

async def test_unmarked():
    pass

@pytest.mark.asyncio
async def test_marked():
    pass
"""


@pytest.mark.parametrize("how", ["ini", "override", "option"])
def test_a_chosen_strict_mode_is_kept(pytester: pytest.Pytester, how: str) -> None:
    # Under strict mode pytest-asyncio runs marked coroutines only; the unmarked one fails as
    # "not natively supported", with the plugin as without it.
    ini = "asyncio_mode = strict\n" if how == "ini" else ""
    args = {"ini": [], "override": ["-o", "asyncio_mode=strict"], "option": ["--asyncio-mode=strict"]}[how]
    pytester.makeini(f"[pytest]\n{ini}asyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_user=STRICT_USER_TESTS)
    with_plugin = pytester.runpytest_inprocess("-q", *args)
    with_plugin.assert_outcomes(passed=1, failed=1)
    with_plugin.stdout.fnmatch_lines(["FAILED test_user.py::test_unmarked - Failed: async def functions are not*"])


def test_marking_can_be_turned_off(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\npocketmesh_mark_async_tests = false\n"
                     "asyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_user="async def test_coroutine():\n    pass\n")
    result = pytester.runpytest_inprocess("-q")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) == 0  # pytest-asyncio strict mode leaves it unrun


def test_options_and_markers_are_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.allow_network:*", "@pytest.mark.llm_cassette(*",
                                 "@pytest.mark.flow_property:*", "@pytest.mark.scenario:*"],
                                consecutive=False)
    result = pytester.runpytest_inprocess("--help")
    result.stdout.fnmatch_lines(["pocketmesh flow testing:", "*--pocketmesh-record-mode*",
                                 "*--pocketmesh-allow-network*", "*--pocketmesh-unused-cassettes*"],
                                consecutive=False)


def test_public_api_is_sorted_and_complete() -> None:
    import pocketmesh_testing

    assert pocketmesh_testing.__all__ == sorted(pocketmesh_testing.__all__)
    for name in pocketmesh_testing.__all__:
        assert hasattr(pocketmesh_testing, name), name
    assert issubclass(pocketmesh_testing.NetworkBlockedError, ConnectionError)
    assert issubclass(pocketmesh_testing.NetworkBlockedError, pocketmesh_testing.PocketMeshTestingError)


LOOP_SCOPE_WARNING = '*"asyncio_default_fixture_loop_scope" is unset*'
LEAN = ("-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:respx", "-p", "no:anyio",
        "-p", "no:xdist", "-p", "no:recording", "-p", "no:syrupy")


def test_the_loop_scope_warning_is_quiet_only_where_the_plugin_runs_the_async_tests(pytester: pytest.Pytester) -> None:
    # pytest-asyncio warns whenever the key is unset, with or without pocketmesh. Where nobody
    # configured pytest-asyncio, the plugin marks the async tests and the warning only nags.
    # Subprocesses: in-process runs would hand the warning to this test's own warning capture.
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_user="import pytest\n\n@pytest.mark.allow_network\nasync def test_coroutine():\n    pass\n")
    quiet = pytester.runpytest_subprocess(*LEAN)
    quiet.assert_outcomes(passed=1)
    assert "asyncio_default_fixture_loop_scope" not in quiet.stdout.str() + quiet.stderr.str()

    without_plugin = pytester.runpytest_subprocess(*LEAN, "-p", "no:pocketmesh")
    without_plugin.stderr.fnmatch_lines([LOOP_SCOPE_WARNING])

    # A user who chose a mode configures pytest-asyncio themselves: its warning is theirs to see.
    chosen = pytester.runpytest_subprocess(*LEAN, "-o", "asyncio_mode=auto")
    chosen.assert_outcomes(passed=1)
    chosen.stderr.fnmatch_lines([LOOP_SCOPE_WARNING])

    # Warnings made errors stay errors: the run ends as it does without the plugin.
    error = (*LEAN, "-W", "error::pytest.PytestDeprecationWarning")
    strict = pytester.runpytest_subprocess(*error)
    assert strict.ret != 0 and strict.ret == pytester.runpytest_subprocess(*error, "-p", "no:pocketmesh").ret
