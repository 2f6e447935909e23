"""The one place where the database schema is created and changed.

``migrate()`` runs at start-up (and in ``labelgraph init``). Each migration is a function
appended to ``MIGRATIONS``; its position + 1 is the schema version it produces, recorded in
the ``schema_version`` table. Never edit a released migration: add a new one, using
``playhouse.migrate`` for column changes so it runs on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import peewee
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as migrate_columns

from server.db import database, is_sqlite, write_transaction
from server.models import ALL_MODELS, DerivedSchema, Job, StagedImport

log = logging.getLogger(__name__)
MIGRATION_LOCK_ID = 0x1A8E1


class SchemaVersion(peewee.Model):
    version = peewee.IntegerField()

    class Meta:
        database = database
        table_name = "schema_version"


def _initial_schema() -> None:
    database.create_tables(ALL_MODELS, safe=True)


def _label_config_schema() -> None:
    """Config versions (parsed-config cache key) and the derived-schema snapshots."""
    columns = {c.name for c in database.get_columns("project")}
    if "label_config_version" not in columns:
        migrator = SchemaMigrator.from_database(database.obj)
        field = peewee.IntegerField(default=1)
        migrate_columns(migrator.add_column("project", "label_config_version", field))
    database.create_tables([DerivedSchema], safe=True)


def _staged_imports() -> None:
    """Staged imports (prepare / review / apply), kept in the database for every worker."""
    database.create_tables([StagedImport], safe=True)


def _ml_backends_and_jobs() -> None:
    """ML backends remember whether /predict takes several tasks and their last training job;
    background (prediction) jobs get a table."""
    columns = {c.name for c in database.get_columns("ml_backend")}
    migrator = SchemaMigrator.from_database(database.obj)
    added = [
        migrator.add_column("ml_backend", name, field)
        for name, field in (
            ("batch_predict", peewee.BooleanField(null=True)),
            ("train_job", peewee.TextField(null=True)),
        )
        if name not in columns
    ]
    if added:
        migrate_columns(*added)
    database.create_tables([Job], safe=True)


MIGRATIONS: list[Callable[[], None]] = [
    _initial_schema,
    _label_config_schema,
    _staged_imports,
    _ml_backends_and_jobs,
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
            # Several workers may start at once: let one of them migrate.
            database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
        database.create_tables([SchemaVersion], safe=True)
        version = current_version()
        for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
            log.info("applying database migration %d (%s)", number, step.__name__)
            step()
            SchemaVersion.create(version=number)
            version = number
    return version
