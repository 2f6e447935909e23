"""Data-manager inputs (task filters and sorts) and saved views (tabs)."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any

import strawberry

from schema.context import Info
from schema.permissions import IsAdmin, inherits_access
from schema.scalars import JSON, from_seconds
from server.errors import not_found
from server.models import TaskView as TaskViewRow
from server.principal import Role
from server.services.datamanager import views as view_service
from server.services.datamanager.conditions import Filter, parse_filter
from server.services.datamanager.fields import Operator
from server.services.datamanager.listing import TaskSelection
from server.services.datamanager.ordering import Sort, parse_sort

# The service's operators, exposed as they are (GraphQL names: the members' names).
strawberry.enum(
    Operator,
    name="FilterOperator",
    description="Filter operators (Label Studio's data-manager set).",
)


@strawberry.input(
    description="A task filter: a group (`and` or `or`, nesting) or one condition "
    "(`field`, `operator`, `value`). Fields: id, createdAt, updatedAt, completedAt, isLabeled, "
    "totalCompletions, cancelledCompletions, totalPredictions, predictionsScore, labels (the "
    "labels chosen in completions), modelVersion (of predictions), data.<key>. `value` is a "
    "number, string, boolean, ISO-8601 datetime or {min, max} for IN/NOT_IN; `type` (Number, "
    "String, Boolean) says how a data key compares (inferred from the value otherwise). "
    "Unknown fields, operators or values fail with extensions.code BAD_FILTER."
)
class TaskFilter:
    and_: list[TaskFilter] | None = strawberry.field(name="and", default=None)
    or_: list[TaskFilter] | None = strawberry.field(name="or", default=None)
    field: str | None = None
    operator: Operator | None = None
    value: JSON | None = None
    type: str | None = None

    def to_spec(self) -> dict[str, Any]:
        if self.and_ is not None:
            return {"and": [item.to_spec() for item in self.and_]}
        if self.or_ is not None:
            return {"or": [item.to_spec() for item in self.or_]}
        spec: dict[str, Any] = {
            "field": self.field,
            "operator": self.operator.value if self.operator else None,
            "value": self.value,
        }
        if self.type is not None:
            spec["type"] = self.type
        return spec


@strawberry.input(description="Order tasks by a filterable field (data.<key> too); ids break ties.")
class TaskSort:
    field: str
    descending: bool = False

    def to_service(self) -> Sort:
        return parse_sort(("-" if self.descending else "") + self.field)


def task_query(
    filter: TaskFilter | None, search: str | None, view: TaskViewRow | None
) -> TaskSelection:
    """The filter of the arguments, AND-ed with the view's."""
    parsed: Filter | None = parse_filter(filter.to_spec()) if filter is not None else None
    if view is not None:
        saved = view_service.view_filter(view)
        if saved is not None and parsed is not None:
            parsed = parse_filter({"and": [view.filters, filter.to_spec()]})  # type: ignore[union-attr]
        elif saved is not None:
            parsed = saved
    return TaskSelection(filter=parsed, search=search or None)


@inherits_access(Role.ANNOTATOR)
@strawberry.type(description="A saved view (a data-manager tab) of a project.")
class TaskViewType:
    row: strawberry.Private[TaskViewRow]

    @strawberry.field(description="The view's number within its project (Label Studio's tab id).")
    def id(self) -> int:
        return self.row.number

    @strawberry.field
    def title(self) -> str:
        return self.row.title

    @strawberry.field(description="The filter, as saved (TaskFilter or Label Studio JSON).")
    def filters(self) -> JSON | None:
        return self.row.filters

    @strawberry.field(description="Field names, `-` for descending; the first one applies.")
    def ordering(self) -> JSON | None:
        return self.row.ordering

    @strawberry.field
    def hidden_columns(self) -> JSON | None:
        return self.row.hidden_columns

    @strawberry.field(
        description='{"all": false, "included": [...]} or {"all": true, "excluded": [...]}'
    )
    def selection(self) -> JSON:
        return self.row.selection or view_service.EMPTY_SELECTION

    @strawberry.field(description="Other keys a client stored on the tab.")
    def extra(self) -> JSON | None:
        return self.row.extra

    @strawberry.field
    def updated_at(self) -> dt.datetime:
        return from_seconds(self.row.updated_at)  # type: ignore[return-value]

    @strawberry.field(description="The view as a Label Studio 0.9 data-manager tab.")
    def ls_json(self) -> JSON:
        return tab_json(self.row)


def tab_json(row: TaskViewRow) -> dict[str, Any]:
    tab: dict[str, Any] = dict(row.extra or {})
    tab.update(
        {
            "id": row.number,
            "title": row.title,
            "hiddenColumns": row.hidden_columns,
            "selectedItems": row.selection or view_service.EMPTY_SELECTION,
        }
    )
    if row.filters is not None:
        tab["filters"] = row.filters
    if row.ordering is not None:
        tab["ordering"] = row.ordering
    return tab


@strawberry.input(description="Fields of a saved view; those left out stay as they are.")
class TaskViewInput:
    title: str | None = strawberry.UNSET
    filters: JSON | None = strawberry.UNSET
    ordering: JSON | None = strawberry.UNSET
    hidden_columns: JSON | None = strawberry.UNSET
    selection: JSON | None = strawberry.UNSET
    extra: JSON | None = strawberry.UNSET

    def changes(self) -> dict[str, Any]:
        return {
            key: getattr(self, key)
            for key in ("title", "filters", "ordering", "hidden_columns", "selection", "extra")
            if getattr(self, key) is not strawberry.UNSET
        }


@strawberry.enum(description="How updateViewSelection combines the given ids with the saved.")
class SelectionChange(Enum):
    SET = "set"
    UNION = "union"
    DIFFERENCE = "difference"


@strawberry.type
class ViewMutation:
    @strawberry.mutation(
        description="Create a view (with `id`: that number, if free) or update one: the "
        "fields given are merged; a changed filter resets the selection.",
        permission_classes=[IsAdmin],
    )
    def save_view(
        self, info: Info, view: TaskViewInput, id: int | None = None, project_id: int | None = None
    ) -> TaskViewType:
        pid = info.context.resolve_project_id(project_id)
        return TaskViewType(row=view_service.save_view(pid, id, view.changes()))

    @strawberry.mutation(description="Delete a view; returns its id.", permission_classes=[IsAdmin])
    def delete_view(self, info: Info, id: int, project_id: int | None = None) -> int:
        return view_service.delete_view(info.context.resolve_project_id(project_id), id)

    @strawberry.mutation(
        description="Delete every view of a project; returns how many.",
        permission_classes=[IsAdmin],
    )
    def delete_all_views(self, info: Info, project_id: int | None = None) -> int:
        return view_service.delete_all_views(info.context.resolve_project_id(project_id))

    @strawberry.mutation(
        description="Change a view's selection of tasks.", permission_classes=[IsAdmin]
    )
    def update_view_selection(
        self,
        info: Info,
        id: int,
        selection: JSON,
        change: SelectionChange = SelectionChange.SET,
        project_id: int | None = None,
    ) -> TaskViewType:
        pid = info.context.resolve_project_id(project_id)
        row = view_service.change_selection(pid, id, selection, change.value)
        return TaskViewType(row=row)


def view_number(raw: str | int) -> int:
    """A view id argument as its number (anything else names no view)."""
    text = str(raw)
    if not text.isdigit() or len(text) > 9:
        raise not_found("View", raw)
    return int(text)


def filtered(
    project_id: int,
    filter: TaskFilter | None,
    search: str | None,
    sort_by: TaskSort | None,
    view: str | int | None,
) -> tuple[TaskSelection | None, Sort | None]:
    """The listing arguments of Project.tasks/taskPage as a query and a sort (None, None:
    the plain listing)."""
    row = view_service.get_view(project_id, view_number(view)) if view is not None else None
    if filter is None and not search and row is None:
        query = None
    else:
        query = task_query(filter, search, row)
    sort = sort_by.to_service() if sort_by is not None else None
    if sort is None and row is not None:
        sort = view_service.view_sort(row)
    return query, sort
