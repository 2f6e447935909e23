"""Bulk actions on a set of a project's tasks, each in one transaction, each reporting how
many items it touched: delete the tasks, delete their completions, delete their predictions.
(Prediction jobs and exports of a selection reuse :mod:`server.services.ml` and
:mod:`server.services.export`; the schema wires them.)

Counters, rank blocks, label rows and the search index (triggers) follow in the same
transaction; subscribers and webhooks hear of the deletions once it commits. Past
``REBUILD_OVER`` tasks, the rank blocks of the orders touched are rebuilt in one statement
instead of being updated task by task.
"""

from __future__ import annotations

from collections.abc import Iterator

from server.db import database, write_transaction
from server.db_rows import ANALYZE_OVER, analyze_referencing
from server.models import Completion, Prediction, Project, Task, TaskLabel
from server.services import events
from server.services.config import derived_schema
from server.services.projects import lock_project
from server.services.tasks import rank_blocks
from server.services.tasks.rank_blocks import Ordering

CHUNK = 500
REBUILD_OVER = 200


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _states(project_id: int, ids: list[int]) -> list[tuple[int, bool, int | None, int, int]]:
    """(id, is_labeled, completed_at, completions, predictions) of the project's tasks among
    ``ids`` (ids of other projects are left out)."""
    found: list[tuple[int, bool, int | None, int, int]] = []
    for chunk in _chunks(ids):
        query = Task.select(
            Task.id,
            Task.is_labeled,
            Task.completed_at,
            Task.total_completions,
            Task.total_predictions,
        ).where(Task.project == project_id, Task.id.in_(chunk))
        found += [(r[0], bool(r[1]), r[2], r[3], r[4]) for r in database.execute(query)]
    return found


def delete_tasks(project_id: int, ids: list[int]) -> int:
    """Delete tasks with their completions and predictions; returns how many."""
    if len(ids) > ANALYZE_OVER:
        analyze_referencing(Task)  # see there: the cascades' plans, else O(n²) on PostgreSQL
    with write_transaction():
        lock_project(project_id)
        states = _states(project_id, ids)
        if not states:
            return 0
        found = sorted(s[0] for s in states)
        if events.bus.wanted(project_id):
            events.add(events.bulk(events.TASK_DELETED, project_id, found))
            events.emit(events.PROJECT_UPDATED, project_id, reason="counters")
        for chunk in _chunks(found):
            TaskLabel.delete().where(TaskLabel.task.in_(chunk)).execute()
            Completion.delete().where(Completion.task.in_(chunk)).execute()
            Prediction.delete().where(Prediction.task.in_(chunk)).execute()
            Task.delete().where(Task.id.in_(chunk)).execute()
        if len(states) > REBUILD_OVER:
            rank_blocks.clear(project_id, *Ordering)
            for ordering in Ordering:
                rank_blocks.rebuild(ordering, project_id)
        else:
            for task_id, labeled, completed_at, _, _ in states:
                for ordering in rank_blocks.orderings_of(labeled):
                    key = rank_blocks.key_of(ordering, task_id, completed_at)
                    rank_blocks.remove(project_id, ordering, key)
        Project.update(
            task_count=Project.task_count - len(states),
            labeled_task_count=Project.labeled_task_count - sum(s[1] for s in states),
            completion_count=Project.completion_count - sum(s[3] for s in states),
            prediction_count=Project.prediction_count - sum(s[4] for s in states),
        ).where(Project.id == project_id).execute()
        derived_schema.mark_stale(project_id)
        return len(states)


def delete_completions(project_id: int, ids: list[int]) -> int:
    """Delete every completion of the tasks; returns how many completions."""
    with write_transaction():
        lock_project(project_id)
        states = [s for s in _states(project_id, ids) if s[3]]
        if not states:
            return 0
        found = sorted(s[0] for s in states)
        if events.bus.wanted(project_id):
            _announce_completion_deletions(project_id, found)
        deleted = 0
        for chunk in _chunks(found):
            TaskLabel.delete().where(TaskLabel.task.in_(chunk)).execute()
            deleted += Completion.delete().where(Completion.task.in_(chunk)).execute()
            Task.update(
                total_completions=0, cancelled_completions=0, is_labeled=False, completed_at=None
            ).where(Task.id.in_(chunk)).execute()
        if len(states) > REBUILD_OVER:
            rank_blocks.clear(project_id, Ordering.COMPLETED, Ordering.UNLABELED)
            rank_blocks.rebuild(Ordering.COMPLETED, project_id)
            rank_blocks.rebuild(Ordering.UNLABELED, project_id)
        else:
            for task_id, labeled, completed_at, _, _ in states:
                rank_blocks.move(project_id, task_id, (labeled, completed_at), (False, None))
        Project.update(
            labeled_task_count=Project.labeled_task_count - sum(s[1] for s in states),
            completion_count=Project.completion_count - deleted,
        ).where(Project.id == project_id).execute()
        derived_schema.mark_stale(project_id)
        return int(deleted)


def _announce_completion_deletions(project_id: int, task_ids: list[int]) -> None:
    completion_ids: list[int] = []
    for chunk in _chunks(task_ids):
        query = Completion.select(Completion.id).where(Completion.task.in_(chunk))
        completion_ids += [int(i) for i in query.scalars()]
    events.add(events.bulk(events.COMPLETION_DELETED, project_id, sorted(completion_ids)))
    events.add(events.bulk(events.TASK_UPDATED, project_id, task_ids))
    events.emit(events.PROJECT_UPDATED, project_id, reason="counters")


def delete_predictions(project_id: int, ids: list[int]) -> int:
    """Delete every stored prediction of the tasks; returns how many predictions."""
    with write_transaction():
        lock_project(project_id)
        found = [s[0] for s in _states(project_id, ids) if s[4]]
        deleted = 0
        for chunk in _chunks(found):
            deleted += Prediction.delete().where(Prediction.task.in_(chunk)).execute()
            Task.update(total_predictions=0, predictions_score=None).where(
                Task.id.in_(chunk)
            ).execute()
        Project.update(prediction_count=Project.prediction_count - deleted).where(
            Project.id == project_id
        ).execute()
        return int(deleted)
