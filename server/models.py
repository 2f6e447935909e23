"""Peewee models. Schema creation and migrations live in :mod:`server.migrations`.

Tasks carry denormalised counters (completions, predictions, completed_at, mean score) and a
per-project ``position`` (insertion sequence, ascending with id, gaps left by deletions);
projects carry totals and :class:`TaskRankBlock` rows count tasks per key range for the page
lookups (:mod:`server.services.tasks.rank_blocks`). Services keep them in step inside the same
transaction, so listings, counts and the label stream never scan the table.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import peewee

from server.db import database
from server.json_text import dump_json as dump_json
from server.json_text import load_json as load_json


def now_seconds() -> int:
    return int(time.time())


class JSONField(peewee.JSONField):
    """JSON on both backends: ``json`` on PostgreSQL, compact JSON text on SQLite.

    Both keep the text as written, so objects come back with their keys in the order the
    client sent them, as Label Studio serves them (``jsonb`` would reorder them).
    Peewee's SQLite flavour wraps every value in ``json(?)``; plain text is stored the same way
    and skips that per-row SQL function call during bulk imports.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(dumps=dump_json, loads=load_json, **kwargs)

    def _db_hook(self, database: Any) -> None:
        super()._db_hook(database)  # type: ignore[misc]  # private hook, not in the stubs
        if isinstance(database, peewee.SqliteDatabase):
            self._wrap = dump_json

    def ddl_datatype(self, ctx: Any) -> Any:
        if isinstance(self.model._meta.database.obj, peewee.PostgresqlDatabase):
            return peewee.SQL("JSON")
        return super().ddl_datatype(ctx)


if TYPE_CHECKING:  # peewee's stubs make fields generic in their value type; runtime is not
    _IntAutoField = peewee.AutoField[int]
else:
    _IntAutoField = peewee.AutoField


class IdField(_IntAutoField):
    """An auto-increment id that is never reused, on SQLite too (``AUTOINCREMENT``)."""

    def ddl(self, ctx: Any) -> Any:
        node = super().ddl(ctx)
        if isinstance(self.model._meta.database.obj, peewee.SqliteDatabase):
            return peewee.NodeList((node, peewee.SQL("AUTOINCREMENT")))
        return node


class BaseModel(peewee.Model):
    """Each ``x = ForeignKeyField(...)`` is followed by ``x_id: int``: an annotation only, for
    the type checker, of the id accessor peewee adds for the column."""

    class Meta:
        database = database
        legacy_table_names = False


class _CounterAccessor(peewee.FieldAccessor):
    """Reads a project counter as the exact total (the row's base value plus the per-shard
    deltas of :class:`ProjectCounter`, summed in one statement by
    :func:`server.services.counters.read`), once per instance: the first counter read of a
    loaded project snapshots all four, unless the project was read with its totals
    (:func:`server.services.counters.with_totals`). In update expressions
    (``Project.task_count + n``) the class attribute is still the column, the base that bulk
    writers change."""

    def __get__(self, instance: Any, instance_type: Any = None) -> Any:
        if instance is None:
            return self.field
        totals = instance.__dict__.get("_counter_totals")
        if totals is None:
            if instance.__data__.get("id") is None:  # not stored: only its base values
                return instance.__data__.get(self.name)
            from server.services import counters  # models are below services

            totals = counters.read(instance.__data__["id"])
            instance.__dict__["_counter_totals"] = totals
        return totals[self.name]

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__.pop("_counter_totals", None)
        super().__set__(instance, value)


if TYPE_CHECKING:
    _IntField = peewee.IntegerField[int]
else:
    _IntField = peewee.IntegerField


class CounterField(_IntField):
    """A project total: see :class:`_CounterAccessor`."""

    accessor_class = _CounterAccessor


class Project(BaseModel):
    id = IdField()
    uuid = peewee.CharField(max_length=36, unique=True, default=lambda: str(uuid.uuid4()))
    name = peewee.CharField(max_length=255, unique=True)
    title = peewee.TextField(default="Label Studio")
    description = peewee.TextField(default="")
    instruction = peewee.TextField(default="")
    label_config = peewee.TextField(default="<View></View>")
    label_config_updated = peewee.BooleanField(default=False)
    # Incremented by every config save: parsed configs are cached per (uuid, version).
    label_config_version = peewee.IntegerField(default=1)
    sampling = peewee.CharField(max_length=32, default="sequential")
    allow_delete_completions = peewee.BooleanField(default=True)
    show_instruction = peewee.BooleanField(default=False)
    show_skip_button = peewee.BooleanField(default=True)
    enable_empty_completion = peewee.BooleanField(default=True)
    show_project_links_in_multisession = peewee.BooleanField(default=True)
    settings = JSONField(default=dict)
    # Totals kept in step with the task/completion/prediction tables: these columns are the
    # base that bulk writers change; per-task writers add to ProjectCounter's shards instead
    # (server.services.counters). Reading the attribute gives the exact sum.
    task_count = CounterField(default=0)
    labeled_task_count = CounterField(default=0)
    completion_count = CounterField(default=0)
    prediction_count = CounterField(default=0)
    created_at = peewee.IntegerField(default=now_seconds)
    updated_at = peewee.IntegerField(default=now_seconds)

    def save(self, force_insert: bool = False, only: Any = None) -> Any:
        """Never writes the totals of a stored project: what it holds may be the exact totals
        rather than the base (services change totals through server.services.counters)."""
        if only is None and not force_insert and self.__data__.get("id") is not None:
            only = [f for f in self._meta.sorted_fields if not isinstance(f, CounterField)]
        return super().save(force_insert=force_insert, only=only)


ZERO = peewee.SQL("DEFAULT 0")


class Task(BaseModel):
    id = IdField()
    project = peewee.ForeignKeyField(Project, backref="tasks", on_delete="CASCADE", index=False)
    project_id: int
    position = peewee.IntegerField()
    data = JSONField()
    meta = JSONField(null=True)
    created_at = peewee.IntegerField(default=now_seconds)
    updated_at = peewee.IntegerField(default=now_seconds)
    # SQL defaults too: bulk imports of plain tasks insert only the columns above.
    total_completions = peewee.IntegerField(default=0, constraints=[ZERO])
    cancelled_completions = peewee.IntegerField(default=0, constraints=[ZERO])
    total_predictions = peewee.IntegerField(default=0, constraints=[ZERO])
    is_labeled = peewee.BooleanField(default=False, constraints=[peewee.SQL("DEFAULT FALSE")])
    completed_at = peewee.IntegerField(null=True)
    predictions_score = peewee.DoubleField(null=True)

    class Meta:
        indexes = (
            (("project", "id"), True),
            (("project", "position"), False),
        )


# Partial indexes: each holds only the tasks one access path needs, so importing unlabeled
# tasks without predictions touches none of the last three. Queries must spell the same
# literal conditions (these constants) for the planner to pick them.
UNLABELED = peewee.SQL('"is_labeled" = FALSE')
COMPLETED = peewee.SQL('"completed_at" IS NOT NULL')
SCORED = peewee.SQL('"predictions_score" IS NOT NULL')
PREDICTED = peewee.SQL('"total_predictions" > 0')
Task.add_index(Task.index(Task.project, Task.id, name="task_unlabeled").where(UNLABELED))
Task.add_index(
    Task.index(Task.project, Task.completed_at, Task.id, name="task_completed").where(COMPLETED)
)
Task.add_index(
    Task.index(Task.project, Task.predictions_score, Task.id, name="task_scored").where(
        UNLABELED, SCORED
    )
)
Task.add_index(Task.index(Task.project, Task.id, name="task_predicted").where(UNLABELED, PREDICTED))

# Data-manager orderings by a counter: the tasks whose counter is not 0, by (counter, id); the
# others are listed by id (:func:`server.services.datamanager.ordering.phases`). Plain imports
# touch none of them. Created by migration 10 (``server.migrations._counter_orders``).
LABELED = peewee.SQL('"is_labeled" = TRUE')
UNPREDICTED = peewee.SQL('"total_predictions" = 0')
CANCELLED = peewee.SQL('"cancelled_completions" > 0')
UNCANCELLED = peewee.SQL('"cancelled_completions" = 0')
COUNTER_INDEXES = (
    Task.index(Task.project, Task.total_completions, Task.id, name="task_by_completions").where(
        LABELED
    ),
    Task.index(Task.project, Task.total_predictions, Task.id, name="task_by_predictions").where(
        PREDICTED
    ),
    Task.index(Task.project, Task.cancelled_completions, Task.id, name="task_by_cancelled").where(
        CANCELLED
    ),
)
for _index in COUNTER_INDEXES:
    Task.add_index(_index)


class TaskRankBlock(BaseModel):
    """How many of a project's tasks fall in one key range of one order: the range starts at
    ``(start_at, start_id)`` and ends where the next block of the same order starts. Orders:
    see :class:`server.services.tasks.rank_blocks.Ordering`. Created by migration 4."""

    id = IdField()
    project = peewee.ForeignKeyField(Project, on_delete="CASCADE", index=False)
    project_id: int
    ordering = peewee.SmallIntegerField()
    start_at = peewee.BigIntegerField()
    start_id = peewee.BigIntegerField()
    size = peewee.IntegerField()

    class Meta:
        indexes = ((("project", "ordering", "start_at", "start_id"), True),)


class Completion(BaseModel):
    id = IdField()
    project = peewee.ForeignKeyField(Project, on_delete="CASCADE", index=False)
    project_id: int
    task = peewee.ForeignKeyField(Task, backref="completions", on_delete="CASCADE", index=False)
    task_id: int
    created_at = peewee.IntegerField(default=now_seconds)
    updated_at = peewee.IntegerField(default=now_seconds)
    was_cancelled = peewee.BooleanField(default=False)
    # The completion as the client sent it, without ``id`` and ``created_at``.
    payload = JSONField()
    # The id of the user who made it (null without users); added by the users-and-tokens
    # migration (server.migrations._users_and_tokens).
    completed_by = peewee.IntegerField(null=True)

    class Meta:
        indexes = (
            (("task", "id"), False),
            (("project", "task"), False),
        )


class Prediction(BaseModel):
    id = IdField()
    project = peewee.ForeignKeyField(Project, on_delete="CASCADE", index=False)
    project_id: int
    task = peewee.ForeignKeyField(Task, backref="predictions", on_delete="CASCADE", index=False)
    task_id: int
    score = peewee.DoubleField(null=True)
    model_version = peewee.TextField(null=True)
    created_by = peewee.TextField(null=True)
    created_at = peewee.IntegerField(default=now_seconds)
    # The prediction as given (``result``, ``score``, ``model_version`` and any other keys).
    payload = JSONField()

    class Meta:
        indexes = (
            (("task", "id"), False),
            (("project", "task"), False),
        )


class MLBackend(BaseModel):
    """An ML backend connected to a project (driven by the ML-backend services)."""

    id = IdField()
    project = peewee.ForeignKeyField(Project, backref="ml_backends", on_delete="CASCADE")
    project_id: int
    name = peewee.CharField(max_length=255)
    url = peewee.TextField()
    # The version its last /setup answered (prediction jobs and status checks keep it).
    model_version = peewee.TextField(null=True)
    created_at = peewee.IntegerField(default=now_seconds)
    # Whether /predict answers one result per task for several tasks (null: not known yet);
    # ``train_job``: the last training job id it answered (§5.2).
    batch_predict = peewee.BooleanField(null=True)
    train_job = peewee.TextField(null=True)
    # Configured by the operator (``--ml-backends``): its address is not checked against the
    # non-public ranges (LABELGRAPH_ML_ALLOW_PRIVATE governs the others). Null counts as false.
    trusted = peewee.BooleanField(null=True, default=False)

    class Meta:
        indexes = ((("project", "name"), True),)


class Job(BaseModel):
    """A background job (prediction jobs), its state and progress, readable by every worker."""

    id = IdField()
    project = peewee.ForeignKeyField(Project, backref="jobs", on_delete="CASCADE")
    project_id: int
    kind = peewee.CharField(max_length=32)
    state = peewee.CharField(max_length=16, default="queued")  # queued running done failed
    params = JSONField(default=dict)
    total = peewee.IntegerField(default=0)
    done = peewee.IntegerField(default=0)
    failed = peewee.IntegerField(default=0)
    error = peewee.TextField(null=True)
    created_at = peewee.IntegerField(default=now_seconds)
    started_at = peewee.IntegerField(null=True)
    finished_at = peewee.IntegerField(null=True)
    # Claimed through the database by one process at a time (server.services.jobs.queue):
    # the owner renews its lease by heartbeats; a lease that runs out lets another claim it.
    # Added by migration 7 (nullable or with SQL defaults: no table rebuild).
    lease_owner = peewee.CharField(max_length=128, null=True)
    heartbeat_at = peewee.IntegerField(null=True)
    lease_expires_at = peewee.IntegerField(null=True)
    attempts = peewee.IntegerField(default=0, constraints=[ZERO])
    result = JSONField(null=True)  # what a finished job made (an export's file)


class Upload(BaseModel):
    """A file stored under a project's ``upload/`` folder."""

    id = IdField()
    project = peewee.ForeignKeyField(Project, backref="uploads", on_delete="CASCADE")
    project_id: int
    name = peewee.CharField(max_length=255)
    original_name = peewee.TextField()
    size = peewee.BigIntegerField()
    content_type = peewee.TextField(null=True)
    created_at = peewee.IntegerField(default=now_seconds)

    class Meta:
        indexes = ((("project", "name"), True),)


class DerivedSchema(BaseModel):
    """What a project's tasks and completions require of a labeling config (labeling-config.md
    §7), kept by :mod:`server.services.config.derived_schema`: rows above the watermarks are
    folded in on the next read; changing or deleting older rows marks the snapshot stale."""

    project = peewee.ForeignKeyField(Project, primary_key=True, on_delete="CASCADE")
    project_id: int
    stale = peewee.BooleanField(default=False)
    task_watermark = peewee.IntegerField(default=0)
    task_total = peewee.IntegerField(default=0)
    # Sorted data keys every task has; null while no task was seen.
    input_keys = JSONField(null=True)
    completion_watermark = peewee.IntegerField(default=0)
    completion_total = peewee.IntegerField(default=0)
    # [[from_name, to_name, type], ...] and [[from_name, [label, ...]], ...] of all results.
    output_tuples = JSONField(default=list)
    output_labels = JSONField(default=list)


class StagedImport(BaseModel):
    """An import prepared but not applied yet (``POST /api/project/import/prepare``), per
    project. Its files wait in ``directory`` under the import staging area; ``state`` holds the
    source list and the user's selection, ``report`` the last computed report."""

    id = IdField()
    project = peewee.ForeignKeyField(Project, backref="staged_imports", on_delete="CASCADE")
    project_id: int
    directory = peewee.CharField(max_length=64)
    state = JSONField()
    report = JSONField()
    created_at = peewee.IntegerField(default=now_seconds)
    expires_at = peewee.IntegerField(index=True)


class Storage(BaseModel):
    """A project's source or target storage other than the defaults (rest-api.md §9.2-9.3),
    with its sync state. No row: tasks only in the database (``tasks-json``) and completions
    only in the database (``completions-dir`` not mirrored). Created by migration 2.

    ``params`` holds the other form fields and extras, credentials included: they are never
    returned (see :mod:`server.services.storage.config`)."""

    id = IdField()
    project = peewee.ForeignKeyField(Project, backref="storages", on_delete="CASCADE")
    project_id: int
    role = peewee.CharField(max_length=16)  # source, target
    type = peewee.CharField(max_length=32)
    path = peewee.TextField(null=True)
    params = JSONField(default=dict)
    # Sync state: a sync owns the storage while ``syncing`` (a lease from sync_started_at);
    # ``sync_lease`` names the holder, so one whose lease was taken over cannot renew or end
    # the new holder's (added by ``_storage_sync_lease``).
    syncing = peewee.BooleanField(default=False)
    sync_started_at = peewee.IntegerField(null=True)
    sync_lease = peewee.CharField(max_length=32, null=True)
    synced_at = peewee.IntegerField(null=True)
    last_error = peewee.TextField(null=True)
    error_at = peewee.IntegerField(null=True)
    created_at = peewee.IntegerField(default=now_seconds)
    updated_at = peewee.IntegerField(default=now_seconds)

    class Meta:
        indexes = ((("project", "role"), True),)


class StorageKey(BaseModel):
    """An object of a storage tied to a task: a source object synced into a task (kept after
    the task is deleted, so it is not synced again), or a target object written from a task's
    completions with the digest of what was written. Created by migration 2."""

    id = IdField()
    project = peewee.ForeignKeyField(Project, on_delete="CASCADE", index=False)
    project_id: int
    role = peewee.CharField(max_length=16)
    key = peewee.TextField()
    # Indexed on its own: deleting tasks looks their keys up by task id.
    task = peewee.ForeignKeyField(Task, null=True, on_delete="SET NULL")
    task_id: int | None
    digest = peewee.CharField(max_length=64, null=True)

    class Meta:
        indexes = ((("project", "role", "key"), True),)


ALL_MODELS: tuple[type[BaseModel], ...] = (
    Project,
    Task,
    Completion,
    Prediction,
    MLBackend,
    Upload,
    DerivedSchema,
    StagedImport,
    Job,
)
# Tables created by migration 2 (server.migrations), not by the initial schema.
STORAGE_MODELS: tuple[type[BaseModel], ...] = (Storage, StorageKey)
# Created by migration 4.
RANK_MODELS: tuple[type[BaseModel], ...] = (TaskRankBlock,)


class ProjectCounter(BaseModel):
    """Deltas of a project's totals written by per-task writers, one row per shard (a task's
    shard is its id modulo :data:`server.services.counters.SHARDS`): concurrent writers of
    different tasks rarely update the same row, where one counter row on the project would
    hold them all in line until each commit is flushed. Created by ``_project_counter_shards``."""

    project = peewee.ForeignKeyField(Project, on_delete="CASCADE", index=False)
    project_id: int
    shard = peewee.IntegerField()
    task_count = peewee.IntegerField(default=0)
    labeled_task_count = peewee.IntegerField(default=0)
    completion_count = peewee.IntegerField(default=0)
    prediction_count = peewee.IntegerField(default=0)

    class Meta:
        primary_key = peewee.CompositeKey("project", "shard")


class TaskRankChange(BaseModel):
    """A task that joined (``delta`` +1) or left (-1) an order of a project's tasks, at key
    ``(at, task_id)``, not yet folded into the sizes of :class:`TaskRankBlock`: per-task
    writers only insert these rows (no row that concurrent writers update), and page lookups
    add them to the blocks' sizes (:mod:`server.services.tasks.rank_blocks`). Created by
    ``_task_rank_changes``.

    ``project_id`` has no foreign key, on purpose: on PostgreSQL each inserted row would take
    a key-share lock of the project row, which every concurrent writer of the project would
    then share (a multixact rewritten per writer), as ``_drop_child_project_keys`` explains.
    Rows are few (folded every few writes) and ids are never reused, so a row left by a
    deleted project is never counted."""

    id = peewee.AutoField()  # no AUTOINCREMENT on SQLite: nothing refers to these ids
    project_id = peewee.IntegerField()
    ordering = peewee.SmallIntegerField()
    at = peewee.BigIntegerField()
    task_id = peewee.BigIntegerField()
    delta = peewee.SmallIntegerField()

    class Meta:
        table_name = "task_rank_change"
        # Covering: a page lookup reads an order's pending rows from the index alone.
        indexes = ((("project_id", "ordering", "at", "task_id", "delta"), False),)


class TaskRankState(BaseModel):
    """The version of a project's :class:`TaskRankBlock` rows: a new random number whenever a
    block row changes, so a process may keep the blocks it read (with their prefix sums) until
    the version moves. Created by ``_task_rank_changes``."""

    project = peewee.ForeignKeyField(Project, on_delete="CASCADE", primary_key=True)
    project_id: int
    version = peewee.BigIntegerField()

    class Meta:
        table_name = "task_rank_state"


class DatabaseHome(BaseModel):
    """Which project a single-project server opens in this database (one row, ``id`` 1): the
    project's identity lives in the database, not in the name of the directory it was started
    from (:mod:`server.services.project_home`). Created by migration 6."""

    id = peewee.IntegerField(primary_key=True)
    project = peewee.ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int

    class Meta:
        table_name = "database_home"


class TaskLabel(BaseModel):
    """A label chosen for a task in one of its completions (a ``choices``/``*labels`` value of
    control ``from_name``), kept by :mod:`server.services.datamanager.labels` in the completion
    write transactions: "tasks with label X" is an index range, not a scan of the completion
    JSON. Created by migration 9 (data manager)."""

    id = IdField()
    project = peewee.ForeignKeyField(Project, on_delete="CASCADE", index=False)
    project_id: int
    task = peewee.ForeignKeyField(Task, on_delete="CASCADE", index=False)
    task_id: int
    from_name = peewee.TextField()
    label = peewee.TextField()

    class Meta:
        indexes = (
            (("task", "from_name", "label"), True),
            (("project", "label", "task"), False),
        )


class TaskView(BaseModel):
    """A saved view (a data-manager tab) of a project: its filter, ordering, hidden columns
    and selection. ``number`` is the tab id clients see, per project. Created by migration 9."""

    id = IdField()
    project = peewee.ForeignKeyField(Project, on_delete="CASCADE", index=False)
    project_id: int
    number = peewee.IntegerField()
    title = peewee.TextField()
    filters = JSONField(null=True)
    ordering = JSONField(null=True)
    hidden_columns = JSONField(null=True)
    selection = JSONField(null=True)
    # Anything else a client stored on the tab (Label Studio keeps the whole object).
    extra = JSONField(null=True)
    created_at = peewee.IntegerField(default=now_seconds)
    updated_at = peewee.IntegerField(default=now_seconds)

    class Meta:
        indexes = ((("project", "number"), True),)


# Created by migration 9 (data manager).
DATAMANAGER_MODELS: tuple[type[BaseModel], ...] = (TaskLabel, TaskView)
