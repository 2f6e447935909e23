"""Helpers for the export tests: the golden scenarios recorded from Label Studio 0.9.1
(``tests/fixtures/label-studio-0.9.1/golden/export/``) and running exports.

Tests that need a scenario fail, not skip, when it is missing.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server import db
from server.models import Completion
from server.services import projects
from server.services.export import exporter as export_service
from server.services.imports import json_import as imports
from server.settings import Settings
from tests.peewee_typed import tuple_rows
from tests.recorded_fixtures import RECORDED, recorded_path

GOLDEN_EXPORT = RECORDED / "golden" / "export"
SCENARIOS = ("audio_transcription", "image_brush", "image_rect_poly", "text_ner_choices")


def golden_export_dir() -> Path:
    return recorded_path("golden", "export")


@dataclass
class Scenario:
    """A golden project imported into the test project, with the id mapping (golden -> new):
    labelgraph's ids are global and start at 1, so they differ from the recorded ones."""

    name: str
    path: Path
    project_id: int
    task_ids: dict[int, int]
    completion_ids: dict[int, int]
    manifest: dict[str, Any]

    def golden_task_id(self, new_id: int) -> int:
        return {v: k for k, v in self.task_ids.items()}[new_id]

    def golden_completion_id(self, new_id: int) -> int:
        return {v: k for k, v in self.completion_ids.items()}[new_id]

    def documents(self) -> list[dict[str, Any]]:
        files = sorted((self.path / "project" / "completions").glob("*.json"), key=_numeric_stem)
        return [json.loads(f.read_text(encoding="utf-8")) for f in files]


def _numeric_stem(path: Path) -> int:
    return int(path.stem)


def load_scenario(name: str, settings: Settings, project_id: int) -> Scenario:
    """Import the scenario's completions store through the import service (tasks with their
    completions inside) and copy its uploads into the project's upload folder."""
    path = golden_export_dir() / name
    uploads = path / "project" / "upload"
    settings.upload_dir.mkdir(parents=True, exist_ok=True)
    if uploads.is_dir():
        for file in uploads.iterdir():
            shutil.copyfile(file, settings.upload_dir / file.name)
    scenario = Scenario(
        name=name,
        path=path,
        project_id=project_id,
        task_ids={},
        completion_ids={},
        manifest=json.loads((path / "manifest.json").read_text(encoding="utf-8")),
    )
    documents = scenario.documents()
    config = (path / "project" / "config.xml").read_text(encoding="utf-8")

    def setup() -> tuple[list[int], list[int]]:
        projects.set_label_config(project_id, config)
        result = imports.import_tasks(project_id, documents)
        query = Completion.select(Completion.id).where(Completion.task.in_(result.task_ids))
        return result.task_ids, [row[0] for row in tuple_rows(query.order_by(Completion.id))]

    task_ids, completion_ids = db.with_connection(setup)
    scenario.task_ids = dict(zip((d["id"] for d in documents), task_ids, strict=True))
    golden_completions = [c["id"] for d in documents for c in d["completions"]]
    scenario.completion_ids = dict(zip(golden_completions, completion_ids, strict=True))
    return scenario


def run_export(
    settings: Settings, project_id: int, format_name: str, **options: Any
) -> tuple[export_service.ExportResult, dict[str, bytes]]:
    """Export through the service; returns the result and the zip's files (no directories)."""
    result = db.with_connection(
        export_service.export_project, project_id, format_name, settings, **options
    )
    return result, zip_files(result.path)


def zip_files(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {n: archive.read(n) for n in archive.namelist() if not n.endswith("/")}


def zip_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()
