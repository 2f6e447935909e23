"""The one place where the database schema is created and changed.

``migrate()`` runs at start-up (and in ``labelgraph init``). Each migration is a function
appended to ``MIGRATIONS``; its position + 1 is the schema version it produces, recorded in
the ``schema_version`` table. Never edit a released migration: add a new one, using
``playhouse.migrate`` for column changes so it runs on SQLite and PostgreSQL alike.

SQLite caution: peewee rebuilds a table for some column changes (e.g. a NOT NULL column
without a server default); with ``foreign_keys=1`` dropping the old table cascades deletes into
the child tables. Add columns as NULL or with ``constraints=[SQL("DEFAULT …")]``, or run the
step with ``PRAGMA foreign_keys=OFF`` (outside the transaction) — and test the step against a
database that holds data (``tests/services/test_migrations.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import peewee
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as apply

from server.db import database, is_sqlite, write_transaction
from server.models import (
    ALL_MODELS,
    RANK_MODELS,
    STORAGE_MODELS,
    DatabaseHome,
    Project,
    TaskRankBlock,
    TaskRankChange,
    TaskRankState,
)

log = logging.getLogger(__name__)
MIGRATION_LOCK_ID = 0x1A8E1


class SchemaVersion(peewee.Model):
    version = peewee.IntegerField()

    class Meta:
        database = database
        table_name = "schema_version"


def _initial_schema() -> None:
    database.create_tables(ALL_MODELS, safe=True)


def _storage_tables() -> None:
    """Storage settings and sync state per project, and the storage objects tied to tasks
    (new tables only: no existing table changes)."""
    database.create_tables(STORAGE_MODELS, safe=True)


def _ml_backend_trusted() -> None:
    """``ml_backend.trusted`` (nullable: no table rebuild on SQLite). Databases created by a
    later ``_initial_schema`` already have it."""
    if "trusted" in {c.name for c in database.get_columns("ml_backend")}:
        return
    migrator = SchemaMigrator.from_database(database.obj)
    apply(migrator.add_column("ml_backend", "trusted", peewee.BooleanField(null=True)))


def _task_rank_blocks() -> None:
    """Page lookups without renumbering or OFFSET: the counted key blocks of every project's
    tasks in each order (:mod:`server.services.tasks.rank_blocks`), built from the existing
    rows. Existing positions are dense, which the new rule (ascending with id, gaps allowed)
    accepts as they are."""
    from server.services.tasks import rank_blocks

    database.create_tables(RANK_MODELS, safe=True)
    TaskRankBlock.delete().execute()
    for ordering in rank_blocks.Ordering:
        rank_blocks.rebuild(ordering)


def _users_and_tokens() -> None:
    """Users and API tokens (new tables), and ``completion.completed_by`` (nullable: no table
    rebuild on SQLite; databases made by a later ``_initial_schema`` already have it)."""
    from server.auth_models import AUTH_MODELS

    database.create_tables(AUTH_MODELS, safe=True)
    if "completed_by" not in {c.name for c in database.get_columns("completion")}:
        migrator = SchemaMigrator.from_database(database.obj)
        apply(migrator.add_column("completion", "completed_by", peewee.IntegerField(null=True)))


def _database_home() -> None:
    """The database remembers its single-project server's project (``database_home``): a
    database holding exactly one project makes that project its home."""
    database.create_tables([DatabaseHome], safe=True)
    ids = list(Project.select(Project.id).limit(2).scalars())
    if len(ids) == 1 and not DatabaseHome.select().exists():
        DatabaseHome.create(id=1, project=ids[0])


def _job_leases() -> None:
    """Jobs claimed through the database: lease owner, heartbeat, lease expiry, attempts and
    the result (nullable or defaulted columns: no table rebuild on SQLite)."""
    present = {c.name for c in database.get_columns("job")}
    migrator = SchemaMigrator.from_database(database.obj)
    columns: list[tuple[str, peewee.Field]] = [
        ("lease_owner", peewee.CharField(max_length=128, null=True)),
        ("heartbeat_at", peewee.IntegerField(null=True)),
        ("lease_expires_at", peewee.IntegerField(null=True)),
        ("attempts", peewee.IntegerField(default=0, constraints=[peewee.SQL("DEFAULT 0")])),
    ]
    steps = [migrator.add_column("job", name, f) for name, f in columns if name not in present]
    if steps:
        apply(*steps)
    if "result" not in present:
        kind = "TEXT" if is_sqlite() else "JSON"  # as JSONField's DDL on each
        database.execute_sql(f'ALTER TABLE "job" ADD COLUMN "result" {kind}')
    database.execute_sql('CREATE INDEX IF NOT EXISTS "job_state_kind" ON "job" ("state", "kind")')


def _webhook_tables() -> None:
    """Webhooks, their deliveries and delivery attempts (new tables only)."""
    from server.webhook_models import WEBHOOK_MODELS

    database.create_tables(WEBHOOK_MODELS, safe=True)


def _data_manager() -> None:
    """The data manager (filters, search, saved views): the label rows of every completion,
    saved views, full-text search over task data and indexes for score and model version
    filters, all built from the existing rows."""
    from server.models import DATAMANAGER_MODELS
    from server.services.datamanager import labels, search

    database.create_tables(DATAMANAGER_MODELS, safe=True)
    database.execute_sql(
        'CREATE INDEX IF NOT EXISTS "task_score" ON "task" '
        '("project_id", "predictions_score", "id") WHERE "predictions_score" IS NOT NULL'
    )
    database.execute_sql(
        'CREATE INDEX IF NOT EXISTS "prediction_version" ON "prediction" '
        '("project_id", "model_version", "task_id")'
    )
    labels.rebuild_all()
    search.create()


def _counter_orders() -> None:
    """Partial indexes for the data manager's orderings by number of completions, of
    predictions and of cancelled completions (each over the tasks whose counter is not 0):
    without them the first page of such an ordering sorts every task of the project."""
    from server.models import COUNTER_INDEXES

    for index in COUNTER_INDEXES:
        database.execute(index)  # CREATE INDEX IF NOT EXISTS


def _disabled_users() -> None:
    """``user.disabled_at`` (nullable: no table rebuild on SQLite; a database whose auth tables
    were made after this model change already has it)."""
    if "disabled_at" not in {c.name for c in database.get_columns("user")}:
        migrator = SchemaMigrator.from_database(database.obj)
        apply(migrator.add_column("user", "disabled_at", peewee.IntegerField(null=True)))


def _storage_sync_lease() -> None:
    """``storage.sync_lease``: who holds a storage's sync (nullable: no table rebuild)."""
    if "sync_lease" not in {c.name for c in database.get_columns("storage")}:
        migrator = SchemaMigrator.from_database(database.obj)
        apply(
            migrator.add_column("storage", "sync_lease", peewee.CharField(max_length=32, null=True))
        )


def _contentless_search() -> None:
    """SQLite: the search table without its own copy of every task's text and without column
    sizes (:mod:`server.services.datamanager.search`), rebuilt from the tasks."""
    from server.services.datamanager import search

    search.recreate_contentless()


def _project_counter_shards() -> None:
    """Per-shard deltas of the project totals (``project_counter``, new table): per-task
    writers add to them instead of updating the project row (:mod:`server.services.counters`).
    Existing totals stay in the project row as the base."""
    from server.models import ProjectCounter

    database.create_tables([ProjectCounter], safe=True)


# The children whose ``project_id`` repeats their task's project (see below).
TASK_CHILD_TABLES = ("completion", "prediction", "task_label")


def _drop_child_project_keys() -> None:
    """PostgreSQL: drop the ``project_id`` foreign keys of ``completion``, ``prediction`` and
    ``task_label`` (the columns and their indexes stay). Each row's ``task_id`` key already
    implies the project (a task belongs to one project; ``task.project_id`` cascades), so the
    check was redundant, and it cost a trigger and a key-share lock of the project row per
    inserted row: ~10 µs of each completion and label row of an import (measured with
    ``BEGIN … ROLLBACK`` in ``psql``, 20k rows). Deleting a project still removes every
    dependent row (project -> task -> children, all ``ON DELETE CASCADE``); deleting all tasks
    deletes the children by project first, as before.

    SQLite keeps its keys: dropping one means rebuilding the three tables, and there the check
    is a lookup in the one-row ``project`` table."""
    if is_sqlite():
        return
    for table in TASK_CHILD_TABLES:
        rows = database.execute_sql(
            "SELECT c.conname FROM pg_constraint c "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) "
            "WHERE c.contype = 'f' AND c.conrelid = %s::regclass "
            "AND c.confrelid = 'project'::regclass AND a.attname = 'project_id'",
            (table,),
        ).fetchall()
        for (name,) in rows:
            database.execute_sql(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')


def _task_rank_changes() -> None:
    """Pending changes of the rank blocks' sizes (``task_rank_change``: per-task writers insert
    rows there instead of updating the block a task joins) and the blocks' version per project
    (``task_rank_state``), new tables (:mod:`server.services.tasks.rank_blocks`). The blocks
    are cut again at the new, smaller size (one statement per order, as ``_task_rank_blocks``
    did: a few seconds at 1M tasks, once) and every project gets a version."""
    import secrets

    from server.services.tasks import rank_blocks

    database.create_tables([TaskRankChange, TaskRankState], safe=True)
    TaskRankBlock.delete().execute()
    for ordering in rank_blocks.Ordering:
        rank_blocks.rebuild(ordering)
    database.execute_sql(
        'INSERT INTO "task_rank_state" ("project_id", "version") '
        f'SELECT "id", {database.param} FROM "project" '
        'WHERE "id" NOT IN (SELECT "project_id" FROM "task_rank_state")',
        (secrets.randbits(62),),
    )


MIGRATIONS: list[Callable[[], None]] = [
    _initial_schema,
    _storage_tables,
    _ml_backend_trusted,
    _task_rank_blocks,
    _users_and_tokens,
    _database_home,
    _job_leases,
    _webhook_tables,
    _data_manager,
    _counter_orders,
    _disabled_users,
    _storage_sync_lease,
    _contentless_search,
    _project_counter_shards,
    _drop_child_project_keys,
    _task_rank_changes,
]


def current_version() -> int:
    if not database.table_exists("schema_version"):
        return 0
    row = SchemaVersion.select(peewee.fn.MAX(SchemaVersion.version)).scalar()
    return int(row or 0)


def migrate() -> int:
    """Bring the schema up to date; return the resulting version."""
    with write_transaction():
        if not is_sqlite():
            # Several workers may start at once: let one of them migrate, however long it
            # takes (the others wait beyond the connections' lock_timeout, the write wait).
            database.execute_sql("SET LOCAL lock_timeout = 0")
            database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
        database.create_tables([SchemaVersion], safe=True)
        version = current_version()
        for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
            log.info("applying database migration %d (%s)", number, step.__name__)
            step()
            SchemaVersion.create(version=number)
            version = number
    return version
