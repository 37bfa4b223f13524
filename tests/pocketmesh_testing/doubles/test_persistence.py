"""Persistence fixtures and the conformance kit, for the built-ins and a broken backend."""

from __future__ import annotations

import pytest

SEED_BACKEND = """
class SeedPersistence:
    # The seed's in-memory example, in Python: the five methods and nothing else.
    def __init__(self):
        self.runs = {}
    async def save_run(self, run_id, state, params):
        self.runs.setdefault(run_id, {"state": None, "steps": {}})["state"] = state
    async def load_run(self, run_id):
        run = self.runs.get(run_id)
        return run["state"] if run else None
    async def save_step(self, run_id, step_id, node_name, result):
        if run_id in self.runs:
            self.runs[run_id]["steps"][f"{node_name}-{step_id}"] = result
    async def list_runs(self):
        return list(self.runs)
    async def delete_run(self, run_id):
        self.runs.pop(run_id, None)

class BrokenPersistence(SeedPersistence):
    # Two classic bugs: steps overwrite the state, and delete_run forgets the index.
    async def save_step(self, run_id, step_id, node_name, result):
        if run_id in self.runs:
            self.runs[run_id]["state"] = result
    async def delete_run(self, run_id):
        if run_id in self.runs:
            self.runs[run_id]["state"] = None
"""


def test_fixtures_and_builtin_conformance(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user="""
        import pytest
        from pocketmesh import InMemoryPersistence, SQLitePersistence
        from pocketmesh_testing import check_persistence_conformance

        async def test_each_backend(persistence):
            await persistence.save_run("r1", {"a": 1}, {})
            assert await persistence.load_run("r1") == {"a": 1}
            assert await persistence.list_runs() == ["r1"]

        def test_kinds(memory_persistence, sqlite_persistence, tmp_path):
            assert isinstance(memory_persistence, InMemoryPersistence)
            assert isinstance(sqlite_persistence, SQLitePersistence)

        @pytest.mark.asyncio
        async def test_memory_conforms():
            await check_persistence_conformance(InMemoryPersistence)

        @pytest.mark.asyncio
        async def test_sqlite_conforms(tmp_path):
            counter = iter(range(1000))
            await check_persistence_conformance(
                lambda: SQLitePersistence(path=str(tmp_path / f"db{next(counter)}.sqlite")))
        """
    )
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(passed=5)


def test_conformance_class_for_a_custom_backend(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user=SEED_BACKEND + """
import pytest
from pocketmesh_testing import PersistenceConformance

class TestSeed(PersistenceConformance):
    @pytest.fixture
    def backend(self):
    	return SeedPersistence()

class TestBroken(PersistenceConformance):
    @pytest.fixture
    def backend(self):
        return BrokenPersistence()
""".replace("\t", "    ")
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:randomly")
    result.assert_outcomes(passed=9 + 6, failed=3)
    result.stdout.fnmatch_lines([
        "*PersistenceConformanceError: delete_run: list_runs after deleting 'drop' returned*",
        "*PersistenceConformanceError: isolation: *",
        "*PersistenceConformanceError: steps keep state: after three save_step calls load_run returned*",
    ], consecutive=False)


def test_conformance_function_lists_every_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user=SEED_BACKEND + """
import pytest
from pocketmesh_testing import check_persistence_conformance

@pytest.mark.asyncio
async def test_seed():
    await check_persistence_conformance(SeedPersistence)

@pytest.mark.asyncio
async def test_broken():
    await check_persistence_conformance(BrokenPersistence)
"""
    )
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*PersistenceConformanceError: 3 persistence conformance check(s) failed for backends from "
        "'BrokenPersistence':",
        "*  - delete_run: *", "*  - isolation: *", "*  - steps keep state: *",
    ])
