"""Saved views (data-manager tabs) of a project: title, filter, ordering, hidden columns and a
selection of tasks. Views are numbered per project (Label Studio's tab ids); every lookup is
scoped to the project, so a number of another project's view is simply not found."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import peewee

from server.db import write_transaction
from server.errors import DomainError, not_found
from server.models import Task, TaskView, now_seconds
from server.services.datamanager.conditions import Filter, parse_filter
from server.services.datamanager.fields import bad_filter
from server.services.datamanager.listing import TaskSelection
from server.services.datamanager.ordering import Sort, parse_sort

MAX_SELECTED = 100_000
EMPTY_SELECTION: dict[str, Any] = {"all": False, "included": []}
_FIELDS = ("title", "filters", "ordering", "hidden_columns", "selection", "extra")


@dataclass(frozen=True)
class Selection:
    all: bool
    ids: tuple[int, ...]  # included when not ``all``, excluded when ``all``

    def as_json(self) -> dict[str, Any]:
        key = "excluded" if self.all else "included"
        return {"all": self.all, key: list(self.ids)}

    @property
    def is_empty(self) -> bool:
        return not self.all and not self.ids


def parse_selection(spec: Any) -> Selection:
    """``{"all": false, "included": [...]}`` or ``{"all": true, "excluded": [...]}``."""
    if not isinstance(spec, dict) or not isinstance(spec.get("all", False), bool):
        raise DomainError("invalid", 'A selection is {"all": bool, "included"|"excluded": [ids]}')
    every = bool(spec.get("all", False))
    raw = spec.get("excluded" if every else "included", [])
    if raw is None:
        raw = []
    if not isinstance(raw, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**63 for i in raw
    ):
        raise DomainError("invalid", "Selected task ids must be a list of positive integers")
    if len(raw) > MAX_SELECTED:
        raise DomainError("too_large", f"At most {MAX_SELECTED} task ids per selection")
    return Selection(every, tuple(sorted(set(raw))))


def check_task_ids(project_id: int, ids: tuple[int, ...]) -> None:
    """Every id must name a task of this project (hostile ids are not found)."""
    if not ids:
        return
    found: set[int] = set()
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        found.update(
            Task.select(Task.id).where(Task.project == project_id, Task.id.in_(chunk)).scalars()
        )
    missing = [i for i in ids if i not in found]
    if missing:
        raise not_found("Task", missing[0])


def selection_query(selection: Selection, base: TaskSelection | None = None) -> TaskSelection:
    """The tasks a selection names (within ``base``'s filter when ``all``)."""
    base = base or TaskSelection()
    if selection.all:
        return TaskSelection(base.filter, base.search, None, selection.ids)
    return TaskSelection(None, None, selection.ids, None)


def list_views(project_id: int) -> list[TaskView]:
    return list(TaskView.select().where(TaskView.project == project_id).order_by(TaskView.number))


def get_view(project_id: int, number: int) -> TaskView:
    view: TaskView | None = TaskView.get_or_none(
        (TaskView.project == project_id) & (TaskView.number == number)
    )
    if view is None:
        raise not_found("View", number)
    return view


def _checked(changes: dict[str, Any], project_id: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in _FIELDS:
            continue
        if key == "title":
            if not isinstance(value, str) or len(value) > 500:
                raise DomainError("invalid", "A view title is a string of at most 500 characters")
        elif key == "filters":
            parse_filter(value)
        elif key == "ordering":
            if value is not None:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise bad_filter("ordering is a list of field names")
                for item in value[:1]:
                    parse_sort(item)
        elif key == "hidden_columns":
            if value is not None and not isinstance(value, dict | list):
                raise DomainError("invalid", "hiddenColumns must be an object or a list")
        elif key == "selection" and value is not None:
            selection = parse_selection(value)
            check_task_ids(project_id, selection.ids)
            value = selection.as_json()
        elif key == "extra" and value is not None and not isinstance(value, dict):
            raise DomainError("invalid", "extra must be an object")
        out[key] = value
    return out


def save_view(project_id: int, number: int | None, changes: dict[str, Any]) -> TaskView:
    """Create (``number`` None: the next number; or an unknown number) or merge changes into
    a view. A changed filter resets the selection unless one is given (as Label Studio)."""
    checked = _checked(changes, project_id)
    with write_transaction():
        existing = None
        if number is not None:
            if not 0 < number < 2**31:
                raise not_found("View", number)
            existing = TaskView.get_or_none(
                (TaskView.project == project_id) & (TaskView.number == number)
            )
        if existing is None:
            if number is None:
                highest = (
                    TaskView.select(peewee.fn.MAX(TaskView.number))
                    .where(TaskView.project == project_id)
                    .scalar()
                )
                number = int(highest or 0) + 1
            fields = {"title": f"Tab {number}", "selection": EMPTY_SELECTION, **checked}
            return TaskView.create(project=project_id, number=number, **fields)
        if "filters" in checked and checked["filters"] != existing.filters:
            checked.setdefault("selection", EMPTY_SELECTION)
        for key, value in checked.items():
            setattr(existing, key, value)
        existing.updated_at = now_seconds()
        existing.save()
        return existing


def delete_view(project_id: int, number: int) -> int:
    with write_transaction():
        view = get_view(project_id, number)
        view.delete_instance()
        return number


def delete_all_views(project_id: int) -> int:
    with write_transaction():
        return int(TaskView.delete().where(TaskView.project == project_id).execute())


def change_selection(project_id: int, number: int, spec: Any, mode: str) -> TaskView:
    """``set`` replaces the selection, ``union`` adds ids, ``difference`` removes them
    (Label Studio's POST, PATCH and DELETE of selected-items)."""
    given = parse_selection(spec)
    check_task_ids(project_id, given.ids)
    with write_transaction():
        try:
            view = get_view(project_id, number)
        except DomainError:  # Label Studio creates the tab (functions.load_tab)
            view = save_view(project_id, number, {})
        current = parse_selection(view.selection or EMPTY_SELECTION)
        result = given
        if mode in ("union", "difference") and current.all == given.all:
            ids = set(current.ids)
            ids = ids | set(given.ids) if mode == "union" else ids - set(given.ids)
            result = Selection(current.all, tuple(sorted(ids)))
        elif mode == "difference":
            result = current
        view.selection = result.as_json()
        view.updated_at = now_seconds()
        view.save()
        return view


def view_filter(view: TaskView) -> Filter | None:
    return parse_filter(view.filters)


def view_sort(view: TaskView) -> Sort | None:
    ordering = view.ordering
    if isinstance(ordering, list) and ordering:
        return parse_sort(ordering[0])
    return None
