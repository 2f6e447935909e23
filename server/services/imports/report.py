"""What an import reports (rest-api.md §6.6) and what a file import reads.

:class:`ImportResult` is the report, in Label Studio's answer form via ``ls_json`` and stored
for staged imports via ``to_json``; :class:`Selection` the formats a file import reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from server.ls_json import import_report_json

# Progress callback: (tasks read so far, bytes read so far, bytes to read in all).
Progress = Callable[[int, int, int], None]


@dataclass
class ImportResult:
    task_ids: list[int]
    completion_count: int
    prediction_count: int
    preview: list[dict[str, Any]]
    duration: float
    project_name: str = ""
    formats: dict[str, int] = field(default_factory=dict)
    # Label Studio's file-import report fields (§6.6); None for JSON-body imports.
    selected_formats: list[str] | None = None
    selected_objects: list[str | None] | None = None
    files_as_tasks_list: bool = True
    show_files_as_tasks_list: bool | None = None
    # Tasks imported (or, for a staged import not applied yet, to import); -1: len(task_ids).
    total_tasks: int = -1

    def __post_init__(self) -> None:
        if self.total_tasks < 0:
            self.total_tasks = len(self.task_ids)

    def ls_json(self, staged_id: int | None = None) -> dict[str, Any]:
        """The report in Label Studio 0.9's import answer form (rest-api.md §6.6)."""
        return import_report_json(
            self.project_name,
            self.task_ids,
            self.completion_count,
            self.prediction_count,
            self.preview,
            self.duration,
            self.formats,
            selected_formats=self.selected_formats,
            selected_objects=self.selected_objects,
            files_as_tasks_list=self.files_as_tasks_list,
            show_files_as_tasks_list=self.show_files_as_tasks_list,
            total_tasks=self.total_tasks,
            staged_id=staged_id,
        )

    def to_json(self) -> dict[str, Any]:
        """The report without task ids (staged imports keep it in the database)."""
        return {
            "total_tasks": self.total_tasks,
            "completion_count": self.completion_count,
            "prediction_count": self.prediction_count,
            "preview": self.preview,
            "project_name": self.project_name,
            "formats": self.formats,
            "selected_formats": self.selected_formats,
            "selected_objects": self.selected_objects,
            "files_as_tasks_list": self.files_as_tasks_list,
            "show_files_as_tasks_list": self.show_files_as_tasks_list,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> ImportResult:
        return cls(task_ids=[], duration=0.0, **value)


@dataclass(frozen=True)
class Selection:
    """What a file import reads: the formats chosen (None or empty: all, as Label Studio) and
    whether csv/tsv/txt files are task lists (True) or single assets (False)."""

    formats: tuple[str, ...] | None = None
    files_as_tasks_list: bool = True
