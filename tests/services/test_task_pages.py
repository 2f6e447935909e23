"""Page numbers through the counted key blocks equal a brute-force ordering in Python, after
random imports, deletions, labels and unlabels (tiny blocks, so splits and merges happen)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from server import db
from server.models import Completion, Project, Task, TaskRankBlock, TaskRankChange
from server.services import projects
from server.services.imports import pipeline
from server.services.imports.json_import import import_tasks
from server.services.tasks import completions, rank_blocks
from server.services.tasks.rank_blocks import Ordering
from server.services.tasks.tasks import TaskOrder, delete_all_tasks, delete_task, list_page
from tests.conftest import fixture_text

TIMES = [1_600_000_000 + t for t in (0, 5, 5, 9)]  # ties in completed_at on purpose

_import = st.tuples(
    st.just("import"), st.lists(st.sampled_from([None, *TIMES]), min_size=1, max_size=12)
)
_delete = st.tuples(st.just("delete"), st.integers(0, 1000))
_label = st.tuples(st.just("label"), st.integers(0, 1000), st.sampled_from(TIMES))
_unlabel = st.tuples(st.just("unlabel"), st.integers(0, 1000))
_clear = st.tuples(st.just("clear_completions"))
OPERATIONS = st.lists(
    st.one_of(_import, _delete, _delete, _label, _label, _unlabel, _clear), max_size=25
)


@pytest.fixture
def tiny_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rank_blocks, "MAX_SIZE", 6)
    monkeypatch.setattr(rank_blocks, "TARGET", 3)
    monkeypatch.setattr(rank_blocks, "MIN_SIZE", 2)
    monkeypatch.setattr(rank_blocks, "FOLD_EVERY", 3)
    monkeypatch.setattr(rank_blocks, "_recorded", itertools.count(1))


def _item(completed_at: int | None, number: int) -> dict[str, Any]:
    if completed_at is None:
        return {"text": f"t{number}"}
    completion = {"result": [], "created_at": completed_at}
    return {"data": {"text": f"t{number}"}, "completions": [completion]}


def _task_ids(project_id: int) -> list[int]:
    return list(Task.select(Task.id).where(Task.project == project_id).order_by(Task.id).scalars())


def _apply(project_id: int, operation: tuple[Any, ...]) -> None:
    kind = operation[0]
    ids = _task_ids(project_id)
    if kind == "import":
        import_tasks(project_id, [_item(at, n) for n, at in enumerate(operation[1])])
    elif kind == "clear_completions":
        completions.delete_all_completions(project_id)
    elif ids:
        task_id = ids[operation[1] % len(ids)]
        if kind == "delete":
            delete_task(task_id)
        elif kind == "label":
            created = completions.create_completion(task_id, {"result": []})
            completions.update_completion(created.id, {"created_at": operation[2]})
        else:
            completions.delete_task_completions(task_id)


def _expected(project_id: int, order: TaskOrder) -> list[int]:
    tasks = list(Task.select().where(Task.project == project_id))
    if order in (TaskOrder.ID_ASC, TaskOrder.ID_DESC):
        ids = sorted(t.id for t in tasks)
        return ids[::-1] if order is TaskOrder.ID_DESC else ids
    labeled = sorted((t.completed_at, t.id) for t in tasks if t.is_labeled)
    if order is TaskOrder.COMPLETED_AT_DESC:
        labeled.reverse()
    return [i for _, i in labeled] + sorted(t.id for t in tasks if not t.is_labeled)


def _check_pages(project_id: int) -> None:
    project = Project.get_by_id(project_id)
    for ordering in Ordering:
        blocks = TaskRankBlock.select().where(
            TaskRankBlock.project == project_id, TaskRankBlock.ordering == int(ordering)
        )
        pending = TaskRankChange.select().where(
            TaskRankChange.project_id == project_id, TaskRankChange.ordering == int(ordering)
        )
        members = Task.select().where(*rank_blocks.members(project_id, ordering)).count()
        assert sum(b.size for b in blocks) + sum(c.delta for c in pending) == members
    for order in TaskOrder:
        expected = _expected(project_id, order)
        for size in (1, 2, 5):
            for page in range(1, len(expected) // size + 3):
                got = [t.id for t in list_page(project, page, size, order).tasks]
                assert got == expected[(page - 1) * size : page * size], (order, size, page)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=OPERATIONS)
@example(operations=[("import", [TIMES[1]]), ("import", [TIMES[0]] * 7)])  # a split of block 1
def test_pages_equal_a_brute_force_ordering(
    client: TestClient, project_id: int, tiny_blocks: None, operations: list[Any]
) -> None:
    def run() -> None:
        delete_all_tasks(project_id)
        for operation in operations:
            _apply(project_id, operation)
        _check_pages(project_id)

    db.with_connection(projects.set_label_config, project_id, _text_config())
    db.with_connection(run)


def _text_config() -> str:
    return fixture_text("configs/text_classification.xml")


def test_deleting_a_task_keeps_the_positions_of_the_others(
    client: TestClient, project_id: int
) -> None:
    """No renumbering: a deletion leaves a gap, and a later import goes after the highest."""

    def run() -> None:
        projects.set_label_config(project_id, _text_config())
        first = import_tasks(project_id, [{"text": f"t{n}"} for n in range(4)]).task_ids
        delete_task(first[1])
        import_tasks(project_id, [{"text": "t4"}])
        rows = Task.select().where(Task.project == project_id).order_by(Task.id)
        assert [r.position for r in rows] == [0, 2, 3, 4]
        page = list_page(Project.get_by_id(project_id), 2, 2, TaskOrder.ID_ASC)
        assert [t.data["text"] for t in page.tasks] == ["t3", "t4"]
        assert Completion.select().count() == 0

    db.with_connection(run)


def test_a_key_below_every_block_start_is_found(
    client: TestClient, project_id: int, tiny_blocks: None
) -> None:
    """A task labeled earlier than every labeled task joins the first block, which then starts
    at its key."""

    def run() -> None:
        _apply(project_id, ("import", [TIMES[3], None]))
        _apply(project_id, ("label", 1, TIMES[0]))
        _check_pages(project_id)

    db.with_connection(projects.set_label_config, project_id, _text_config())
    db.with_connection(run)


def test_a_huge_page_number_is_empty_in_every_order(client: TestClient, project_id: int) -> None:
    def run() -> None:
        projects.set_label_config(project_id, _text_config())
        import_tasks(project_id, [_item(TIMES[0], 0), _item(None, 1)])
        project = Project.get_by_id(project_id)
        for order in TaskOrder:
            assert list_page(project, 2**70, 2**40, order).tasks == []
            second = "t0" if order is TaskOrder.ID_DESC else "t1"
            assert [t.data["text"] for t in list_page(project, 2, 1, order).tasks] == [second]

    db.with_connection(run)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    imports=st.lists(
        st.lists(st.one_of(st.none(), st.integers(0, 30)), min_size=1, max_size=40),
        min_size=1,
        max_size=4,
    )
)
@example(imports=[[None] * 40, [None] * 2])  # fill the last block, then a short tail
@example(imports=[list(range(40)), list(range(40, 45))])  # completion times always rising
@example(imports=[list(range(40, 0, -1)), [0] * 30])  # falling, then below every key
def test_chunked_imports_cut_blocks_from_their_keys(
    client: TestClient,
    project_id: int,
    tiny_blocks: None,
    monkeypatch: pytest.MonkeyPatch,
    imports: list[list[int | None]],
) -> None:
    """Imports of several chunks cut the blocks of every order from the new keys (no key read
    back while they lie above the counted ones): sizes stay within MIN..MAX but for the last
    block, and pages equal the brute-force ordering."""
    monkeypatch.setattr(pipeline, "CHUNK", 7)

    def run() -> None:
        delete_all_tasks(project_id)
        for number, times in enumerate(imports):
            at = [None if t is None else 1_600_000_000 + t for t in times]
            import_tasks(project_id, [_item(a, 100 * number + n) for n, a in enumerate(at)])
        _check_pages(project_id)
        for ordering in Ordering:
            sizes = [
                b.size
                for b in TaskRankBlock.select()
                .where(TaskRankBlock.project == project_id, TaskRankBlock.ordering == ordering)
                .order_by(TaskRankBlock.start_at, TaskRankBlock.start_id)
            ]
            assert all(size <= rank_blocks.MAX_SIZE for size in sizes), (ordering, sizes)
            assert all(size >= rank_blocks.MIN_SIZE for size in sizes[:-1]), (ordering, sizes)

    db.with_connection(projects.set_label_config, project_id, _text_config())
    db.with_connection(run)
