"""`async def` tests run without asyncio configuration, in strict and auto mode alike."""

from __future__ import annotations

import pytest

USER_TESTS = """
import asyncio, pytest

def asyncio_marks(request):
    return len(list(request.node.iter_markers("asyncio")))

async def test_plain_coroutine(request):
    await asyncio.sleep(0)
    assert asyncio_marks(request) == 1

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


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_coroutine_tests_run_in_any_mode(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makeini(f"[pytest]\nasyncio_mode = {mode}\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(passed=4)


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
