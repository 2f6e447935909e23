"""Data-manager filters compiled to SQL select exactly the tasks a brute-force Python filter
over the same tasks selects: every operator on every field type (hypothesis draws the
conditions and groups); orderings and their keyset cursors equal a Python sort."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from server import db
from server.models import Completion, Prediction, Project, Task
from server.services import projects
from server.services.datamanager import listing
from server.services.datamanager.conditions import Condition, Group, parse_filter
from server.services.datamanager.fields import Operator, ValueType
from server.services.datamanager.labels import labels_of
from server.services.datamanager.listing import TaskSelection
from server.services.datamanager.ordering import parse_sort
from server.services.imports.json_import import import_tasks
from server.services.tasks import completions
from tests.conftest import TEST_DATABASE_URL, fixture_text

T0 = 1_600_000_000
CHOICES = ["Positive", "Negative", "Neutral"]
WORDS = ["alpha", "Beta", "gamma", "", "alphabet", "b"]
N_VALUES: list[Any] = [0, 1, -2, 2.5, 7, "7", "x", True, None, "MISSING"]


def _task(number: int) -> dict[str, Any]:
    data: dict[str, Any] = {"text": f"{WORDS[number % len(WORDS)]} refund {number}"}
    n = N_VALUES[number % len(N_VALUES)]
    if n != "MISSING":
        data["n"] = n
    data["word"] = WORDS[(number * 7) % len(WORDS)]
    if number % 3:
        data["flag"] = number % 2 == 0
    item: dict[str, Any] = {"data": data}
    if number % 4 == 1:
        item["predictions"] = [
            {"result": [], "score": (number % 5) / 4, "model_version": f"v{number % 3}"}
        ]
    if number % 5 == 2:
        item["predictions"] = [{"result": []}]
    if number % 3 == 0:
        chosen = CHOICES[number % 3 :][: 1 + number % 2]
        result = [
            {
                "from_name": "sentiment",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": chosen},
            }
        ]
        item["completions"] = [{"result": result, "created_at": T0 + number * 10}]
        if number % 2:
            item["completions"].append({"result": [], "created_at": T0 + 5, "was_cancelled": True})
    return item


@pytest.fixture
def tasks(client: TestClient, project_id: int) -> list[dict[str, Any]]:
    """30 imported tasks (a few labeled by hand after import) as brute-force records."""

    def run() -> list[dict[str, Any]]:
        projects.set_label_config(project_id, fixture_text("configs/sentiment.xml"))
        ids = import_tasks(project_id, [_task(n) for n in range(30)]).task_ids
        result = [{"from_name": "sentiment", "to_name": "text", "type": "choices"}]
        created = completions.create_completion(
            ids[4], {"result": [{**result[0], "value": {"choices": ["Neutral"]}}]}
        )
        completions.update_completion(created.id, {"created_at": T0 + 999})
        return _records(project_id)

    return db.with_connection(run)


def _records(project_id: int) -> list[dict[str, Any]]:
    records = []
    for task in Task.select().where(Task.project == project_id).order_by(Task.id):
        comps = list(Completion.select().where(Completion.task == task.id))
        preds = list(Prediction.select().where(Prediction.task == task.id))
        labels = set()
        for c in comps:
            labels |= {label for _, label in labels_of(c.payload)}
        records.append(
            {
                "id": task.id,
                "created_at": task.created_at,
                "updated_at": task.updated_at,
                "completed_at": task.completed_at,
                "is_labeled": bool(task.is_labeled),
                "total_completions": task.total_completions,
                "cancelled_completions": task.cancelled_completions,
                "total_predictions": task.total_predictions,
                "predictions_score": task.predictions_score,
                "labels": labels,
                "model_version": {p.model_version for p in preds if p.model_version is not None},
                "data": task.data,
            }
        )
    return records


# --- the brute-force reference ---------------------------------------------------------------


def _typed(record: dict[str, Any], condition: Condition) -> Any:
    field = condition.field
    if field.data_key is None:
        return record[field.name]
    value = record["data"].get(field.data_key)
    kind = condition.type
    if kind is ValueType.NUMBER:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind is ValueType.BOOLEAN:
        ok = isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    return value if ok else None


def _holds(record: dict[str, Any], node: Condition | Group) -> bool:
    if isinstance(node, Group):
        found = [_holds(record, item) for item in node.items]
        if not found:  # an empty group selects everything (no condition)
            return True
        return all(found) if node.conjunction == "and" else any(found)
    op, wanted = node.operator, node.value
    if node.type is ValueType.LIST:
        items: set[str] = record[node.field.name]
        if op is Operator.EMPTY:
            return bool((not items) == wanted)
        if op in (Operator.EQUAL, Operator.NOT_EQUAL):
            hit = wanted in items
        else:
            hit = any(wanted.lower() in item.lower() for item in items)
        return hit if op in (Operator.EQUAL, Operator.CONTAINS) else not hit
    value = _typed(record, node)
    if op is Operator.EMPTY:
        if node.field.data_key is not None:
            raw = record["data"].get(node.field.data_key)
            empty = raw is None or raw == ""
        else:
            empty = value is None
        return bool(empty == wanted)
    positive: dict[Operator, Callable[[], bool]] = {
        Operator.EQUAL: lambda: value == wanted,
        Operator.NOT_EQUAL: lambda: value == wanted,
        Operator.CONTAINS: lambda: wanted.lower() in value.lower(),
        Operator.NOT_CONTAINS: lambda: wanted.lower() in value.lower(),
        Operator.LESS: lambda: value < wanted,
        Operator.GREATER: lambda: value > wanted,
        Operator.LESS_OR_EQUAL: lambda: value <= wanted,
        Operator.GREATER_OR_EQUAL: lambda: value >= wanted,
        Operator.IN: lambda: wanted[0] <= value <= wanted[1],
        Operator.NOT_IN: lambda: wanted[0] <= value <= wanted[1],
    }
    hit = value is not None and positive[op]()
    negated = op in (Operator.NOT_EQUAL, Operator.NOT_CONTAINS, Operator.NOT_IN)
    return not hit if negated else hit


# --- conditions drawn by hypothesis -------------------------------------------------------------

NUMBERS = st.sampled_from([-3, -2, 0, 0.5, 1, 2, 2.5, 3, 7, 10, 29, 1000])
SCORES = st.sampled_from([0, 0.25, 0.5, 0.75, 1, 0.3])
MOMENTS = st.sampled_from([T0, T0 + 30, T0 + 150, T0 + 999, 2_000_000_000])
STRINGS = st.sampled_from(["alpha", "ALPHA", "b", "", "refund", "7", "x", "et", "zzz"])
LABELS = st.sampled_from([*CHOICES, "neg", "Car", "u"])


def _moment(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ops(kind: ValueType) -> st.SearchStrategy[Operator]:
    from server.services.datamanager.fields import OPERATORS

    return st.sampled_from(sorted(OPERATORS[kind], key=lambda o: o.value))


FIELDS: list[tuple[str, ValueType, st.SearchStrategy[Any], str | None]] = [
    ("id", ValueType.NUMBER, NUMBERS, None),
    ("total_completions", ValueType.NUMBER, st.sampled_from([0, 1, 2]), None),
    ("cancelled_completions", ValueType.NUMBER, st.sampled_from([0, 1]), None),
    ("total_predictions", ValueType.NUMBER, st.sampled_from([0, 1]), None),
    ("predictionsScore", ValueType.NUMBER, SCORES, None),
    ("completed_at", ValueType.DATETIME, MOMENTS.map(_moment), None),
    ("created_at", ValueType.DATETIME, MOMENTS, None),
    ("is_labeled", ValueType.BOOLEAN, st.booleans(), None),
    ("labels", ValueType.LIST, LABELS, None),
    ("model_version", ValueType.LIST, st.sampled_from(["v0", "v1", "v", "V2"]), None),
    ("data.n", ValueType.NUMBER, NUMBERS, "Number"),
    ("data.word", ValueType.STRING, STRINGS, "String"),
    ("data.n", ValueType.STRING, STRINGS, "String"),
    ("data.flag", ValueType.BOOLEAN, st.booleans(), "Boolean"),
    ("data.absent", ValueType.STRING, STRINGS, None),
]


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    name, kind, values, declared = draw(st.sampled_from(FIELDS))
    op = draw(_ops(kind))
    if op is Operator.EMPTY:
        value: Any = draw(st.booleans())
    elif op in (Operator.IN, Operator.NOT_IN):
        low, high = draw(values), draw(values)
        value = {"min": low, "max": high}
    else:
        value = draw(values)
    spec = {"filter": f"filters:tasks:{name}", "operator": op.value, "value": value}
    if declared:
        spec["type"] = declared
    return spec


FILTERS = st.recursive(
    conditions(),
    lambda inner: st.fixed_dictionaries(
        {"conjunction": st.sampled_from(["and", "or"]), "items": st.lists(inner, max_size=3)}
    ),
    max_leaves=5,
)


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=FILTERS)
def test_filters_equal_a_brute_force_filter(
    tasks: list[dict[str, Any]], project_id: int, spec: dict[str, Any]
) -> None:
    parsed = parse_filter(spec)
    expected = [r["id"] for r in tasks if parsed is None or _holds(r, parsed)]

    def run() -> list[int]:
        project = Project.get_by_id(project_id)
        return listing.task_ids(project, TaskSelection(filter=parsed))

    assert db.with_connection(run) == expected, spec


def test_every_operator_of_every_type_is_drawn() -> None:
    """The strategy reaches each (type, operator) pair the fields allow."""
    from server.services.datamanager.fields import OPERATORS

    kinds = {kind for _, kind, _, _ in FIELDS}
    assert kinds == set(ValueType)
    assert all(OPERATORS[kind] for kind in kinds)


SORTS = ["id", "completed_at", "predictions_score", "is_labeled", "total_completions"]
SORTS += ["labels", "model_version", "data.n", "data.word", "created_at"]
SORTS += ["total_predictions", "cancelled_completions"]


def _sort_key(record: dict[str, Any], field: str) -> tuple[Any, ...]:
    """(phase, value) as the ordering module defines them, ascending."""
    if field.startswith("data."):
        value = record["data"].get(field[5:])
        if isinstance(value, bool):
            return (2, value)
        if isinstance(value, int | float):
            return (0, value)
        if isinstance(value, str):
            return (1, value)
        return (3, 0)
    if field == "is_labeled":
        return (int(record["is_labeled"]), 0)
    value = record[field]
    if isinstance(value, set):
        return (0, min(value)) if value else (1, 0)
    return (0, value) if value is not None else (1, 0)


@pytest.mark.parametrize("descending", [False, True])
def test_orderings_and_cursors_equal_a_python_sort(
    tasks: list[dict[str, Any]], project_id: int, descending: bool
) -> None:
    for field in SORTS:
        keyed = [(_sort_key(r, field), r["id"]) for r in tasks]
        phases = sorted({k[0] for k, _ in keyed})
        last = 3 if field.startswith("data.") else 1
        expected: list[int] = []
        order = phases[::-1] if descending else phases
        order = [p for p in order if p != last or field == "is_labeled"] + (
            [last] if last in phases and field != "is_labeled" else []
        )
        for phase in order:
            rows = sorted((k[1], i) for k, i in keyed if k[0] == phase)
            if descending and not (phase == last and field != "is_labeled"):
                rows.reverse()
            expected += [i for _, i in rows]
        sort = parse_sort(("-" if descending else "") + field)

        def walk(size: int, sort: Any = sort) -> list[int]:
            project = Project.get_by_id(project_id)
            seen: list[int] = []
            cursor = None
            while True:
                page = listing.list_slice(project, TaskSelection(), sort, size, cursor, 100)
                seen += [t.id for t in page.tasks]
                if not page.has_next_page:
                    return seen
                cursor = page.cursors[-1]

        for size in (1, 4, 50):
            assert db.with_connection(walk, size) == expected, (field, descending, size)

        def numbered(size: int, sort: Any = sort) -> list[int]:
            project = Project.get_by_id(project_id)
            seen: list[int] = []
            for number in range(1, len(tasks) // size + 2):
                page = listing.list_page(project, TaskSelection(), sort, number, size)
                seen += [t.id for t in page.tasks]
            return seen

        assert db.with_connection(numbered, 7) == expected, (field, descending, "pages")


def _plans_of(run: Any) -> list[str]:
    """SQLite's plan of every read of the task table ``run`` executes."""
    statements: list[tuple[str, Any]] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if isinstance(record.msg, tuple) and 'FROM "task" ' in record.msg[0]:
                statements.append(record.msg)

    handler = Capture(logging.DEBUG)
    logger = logging.getLogger("peewee")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        run()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    plans = []
    for sql, params in statements:
        rows = db.database.execute_sql(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
        plans.append(" / ".join(str(row[-1]) for row in rows))
    return plans


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="reads SQLite query plans")
@pytest.mark.parametrize(
    "field", ["total_completions", "total_predictions", "cancelled_completions"]
)
@pytest.mark.parametrize("descending", [False, True])
def test_counter_orderings_read_an_index_in_order(
    tasks: list[dict[str, Any]], project_id: int, field: str, descending: bool
) -> None:
    """Every phase of an ordering by a counter is an index walk in listing order: no sort of
    the project's tasks for a page (each phase is queried: pages of one task, walked to the
    end)."""
    sort = parse_sort(("-" if descending else "") + field)

    def walk() -> None:
        project = Project.get_by_id(project_id)
        cursor = None
        while True:
            page = listing.list_slice(project, TaskSelection(), sort, 1, cursor, 100)
            if not page.has_next_page:
                return
            cursor = page.cursors[-1]

    plans = db.with_connection(_plans_of, walk)
    assert len(plans) >= len(tasks)
    for plan in plans:
        assert "INDEX" in plan and "TEMP B-TREE" not in plan, (field, plan)


@pytest.mark.parametrize("list_bound", [1, 5000])
def test_label_and_version_conditions_by_probe_and_by_list(
    tasks: list[dict[str, Any]], project_id: int, monkeypatch: pytest.MonkeyPatch, list_bound: int
) -> None:
    """ "Has value X" is an EXISTS probe for common values and an id list for rare ones: both
    select the brute-force answer; the direct counts equal the generic ones."""
    from server.services.datamanager import compile as compile_module

    monkeypatch.setattr(compile_module, "LIST_BOUND", list_bound)
    specs: list[dict[str, Any]] = [
        {"field": field, "operator": op, "value": value}
        for field, values in (("labels", [*CHOICES, "Car"]), ("model_version", ["v0", "v1"]))
        for value in values
        for op in ("equal", "not_equal", "contains")
    ]
    specs += [
        {"field": "is_labeled", "operator": op, "value": v}
        for op in ("equal", "not_equal")
        for v in (True, False)
    ]

    def run() -> None:
        project = Project.get_by_id(project_id)
        for spec in specs:
            parsed = parse_filter(spec)
            assert parsed is not None
            expected = [r["id"] for r in tasks if _holds(r, parsed)]
            selection = TaskSelection(filter=parsed)
            assert listing.task_ids(project, selection) == expected, spec
            assert listing.count(project, selection) == len(expected), spec
            assert _walked(project, selection, 3) == expected, spec

    db.with_connection(run)


def _walked(project: Project, selection: TaskSelection, size: int) -> list[int]:
    """Every task of a selection, by keyset pages of ``size`` in id order."""
    seen: list[int] = []
    cursor = None
    while True:
        page = listing.list_slice(project, selection, parse_sort("id"), size, cursor, 100)
        seen += [t.id for t in page.tasks]
        if not page.has_next_page:
            return seen
        cursor = page.cursors[-1]


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="reads PostgreSQL query plans")
@pytest.mark.parametrize(
    "spec",
    [
        {"field": "labels", "operator": "equal", "value": "Positive"},
        {"field": "labels", "operator": "not_equal", "value": "Positive"},
        {"field": "model_version", "operator": "contains", "value": "v"},
        {"field": "labels", "operator": "empty", "value": False},
    ],
)
def test_a_keyset_page_probes_labels_by_task_on_postgresql(
    tasks: list[dict[str, Any]],
    project_id: int,
    monkeypatch: pytest.MonkeyPatch,
    spec: dict[str, Any],
) -> None:
    """A page's label or version probe stays a subplan run per task in listing order: a
    (merge) semi-join would read the label index from its start on every page, whatever the
    cursor. The count keeps the join."""
    from server.services.datamanager import compile as compile_module

    monkeypatch.setattr(compile_module, "LIST_BOUND", 1)  # "equal" probes too
    selection = TaskSelection(filter=parse_filter(spec))

    def plans(paged: bool) -> str:
        where = listing.conditions(project_id, selection, paged=paged)
        sql, params = Task.select(Task.id).where(*where).order_by(Task.id).limit(4).sql()
        rows = db.database.execute_sql(f"EXPLAIN {sql}", params).fetchall()
        return "\n".join(str(row[0]) for row in rows)

    paged, counted = db.with_connection(plans, True), db.with_connection(plans, False)
    assert "SubPlan" in paged and " Join" not in paged, paged
    assert "SubPlan" not in counted, counted


@pytest.mark.parametrize(
    ("field", "spec"),
    [
        ("completed_at", {"field": "completed_at", "operator": "greater", "value": T0 + 30}),
        ("predictions_score", {"field": "predictions_score", "operator": "less", "value": 0.6}),
        ("labels", {"field": "labels", "operator": "equal", "value": "Negative"}),
        ("completed_at", {"field": "completed_at", "operator": "empty", "value": False}),
    ],
)
def test_a_filter_needing_a_value_lists_the_same_without_the_null_phase(
    tasks: list[dict[str, Any]], project_id: int, field: str, spec: dict[str, Any]
) -> None:
    """A filter on the ordering's own field skips the "no value" phase: the listing (every
    page size, both directions) is still the brute-force one."""
    parsed = parse_filter(spec)
    assert parsed is not None and listing.rejects_null(parsed, field)
    kept = [r for r in tasks if _holds(r, parsed)]
    for descending in (False, True):
        ranked = sorted(kept, key=lambda r: (_sort_key(r, field)[1], r["id"]), reverse=descending)
        expected = [r["id"] for r in ranked]
        sort = parse_sort(("-" if descending else "") + field)

        def walk(size: int, sort: Any = sort) -> list[int]:
            project = Project.get_by_id(project_id)
            seen: list[int] = []
            cursor = None
            while True:
                page = listing.list_slice(
                    project, TaskSelection(filter=parsed), sort, size, cursor, 100
                )
                seen += [t.id for t in page.tasks]
                if not page.has_next_page:
                    return seen
                cursor = page.cursors[-1]

        for size in (1, 3, 50):
            assert db.with_connection(walk, size) == expected, (spec, descending, size)
