"""Label Studio's data-key consistency checks of file imports (§6.4), across files and
against the project's tasks."""

from __future__ import annotations

from typing import Any

from server.db import database, is_sqlite
from server.errors import DomainError
from server.models import Project
from server.services.config.model import UNDEFINED_KEY


class DataKeys:
    """Label Studio's consistency checks of file imports (§6.4): every file gives the same data
    keys (those of its first task), and they match the keys all of the project's tasks have."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.keys: set[str] | None = None
        self.first_file = ""

    def check(self, file_name: str, item: Any) -> None:
        data = item.get("data") if isinstance(item, dict) else None
        keys = set(data) if isinstance(data, dict) else set()
        if self.keys is None:
            self.keys = keys
            self.first_file = file_name
            self._check_project(keys)
        elif keys != self.keys:
            raise _inconsistent(_files_message(keys, self.keys, file_name))

    def _check_project(self, keys: set[str]) -> None:
        if not self.project.task_count:
            return
        common = project_data_keys(self.project.id, self.project.task_count)
        imported = keys - {UNDEFINED_KEY}
        if not common or common == {UNDEFINED_KEY} or not imported or imported == common:
            return
        raise _inconsistent(
            "Import data inconsistent with current project:\n"
            f"Imported column names {','.join(sorted(imported))}\n"
            f"are inconsistent with common columns found in dataset: {','.join(sorted(common))}"
        )


def _inconsistent(message: str) -> DomainError:
    return DomainError("invalid_tasks", message, {"errors": [message]})


def _files_message(new: set[str], old: set[str], file_name: str) -> str:
    """Label Studio's wording for files whose data keys differ."""
    new_keys, old_keys = ",".join(sorted(new)), ",".join(sorted(old))
    prefix = "You're trying to import inconsistent data:\n"
    if new_keys == UNDEFINED_KEY:
        return (
            f"{prefix}uploading a single file {file_name} clashes with data key(s) found from "
            f'other files:\n"{old_keys}"'
        )
    if old_keys == UNDEFINED_KEY:
        return (
            f"{prefix}uploading tabular data from {file_name} with data key(s) {new_keys}, "
            "clashes with other raw binary files (images, audios, etc.)"
        )
    return (
        f'{prefix}uploading tabular data from "{file_name}" with data key(s) "{new_keys}", '
        f'clashes with data key(s) found from other files:\n"{old_keys}"'
    )


_SQLITE_KEYS = (
    'SELECT j."key", COUNT(*) FROM "task" AS t, json_each(t."data") AS j '
    'WHERE t."project_id" = ? AND json_type(t."data") = \'object\' GROUP BY j."key"'
)
_PG_KEYS = (
    'SELECT k, COUNT(*) FROM "task" AS t CROSS JOIN LATERAL json_object_keys('
    "CASE WHEN json_typeof(t.\"data\") = 'object' THEN t.\"data\" ELSE '{}'::json END) AS k "
    'WHERE t."project_id" = %s GROUP BY k'
)


def project_data_keys(project_id: int, task_count: int) -> set[str]:
    """The data keys every task of the project has (one aggregate query)."""
    sql = _SQLITE_KEYS if is_sqlite() else _PG_KEYS
    rows = database.execute_sql(sql, (project_id,)).fetchall()
    return {str(key) for key, count in rows if count == task_count}
