"""ML backends of a project (ml-backend.md): connecting, listing, removing, their status,
and the notice sent when all tasks are deleted.

Every function that calls a backend follows "read, call, write": database reads first, then the
HTTP calls with the connection handed back to the pool (:func:`server.db.released`), then short
write transactions. No backend is ever called inside a transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlparse

from server.db import database, released, write_transaction
from server.errors import DomainError
from server.models import MLBackend
from server.services.ml.client import MLClient, Reply, Target
from server.services.projects import get_project, lock_project, parsed_config

NO_ML_BACKEND = "No ML backend"


def parse_backend_spec(spec: str, project_name: str) -> tuple[str, str]:
    """(name, url) from ``URL`` or ``NAME=URL`` (§1.2): ``NAME=URL`` when the string contains
    ``=http`` (split at the first ``=``); otherwise the name is the project name followed by
    4 random hex digits."""
    if "=http" in spec:
        name, url = spec.split("=", 1)
        return name.strip(), url.strip()
    return project_name + uuid.uuid4().hex[:4], spec.strip()


def check_url(url: str) -> None:
    parsed = urlparse(url)
    if not parsed.scheme or not parsed.netloc:
        raise DomainError(
            "invalid", f'Specified string "{url}" doesn\'t look like URL.', {"url": url}
        )


def _check_name(name: str) -> None:
    if not name or len(name) > 255:
        raise DomainError(
            "invalid", "An ML backend name must have 1 to 255 characters", {"field": "name"}
        )


def list_backends(project_id: int) -> list[MLBackend]:
    """The project's backends in the order they were added (Label Studio's settings order)."""
    return list(MLBackend.select().where(MLBackend.project == project_id).order_by(MLBackend.id))


def has_backends(project_id: int) -> bool:
    """Whether a project has an ML backend: one indexed lookup in raw SQL, for the path of
    every task served with live predictions (building the peewee query costs ~20x running it,
    and most projects have no backend)."""
    mark = database.param
    cursor = database.execute_sql(
        f'SELECT 1 FROM "ml_backend" WHERE "project_id" = {mark} LIMIT 1', (project_id,)
    )
    return cursor.fetchone() is not None


def _duplicate(project_id: int, name: str) -> DomainError | None:
    if MLBackend.get_or_none(MLBackend.project == project_id, MLBackend.name == name) is None:
        return None
    return DomainError("conflict", f'ML backend with name "{name}" already exists', {"name": name})


def add_backend(
    client: MLClient | None,
    project_id: int,
    spec: str,
    name: str | None = None,
    *,
    check_connection: bool = True,
    trusted: bool = False,
) -> MLBackend:
    """Connect a backend given as ``URL`` or ``NAME=URL`` (or ``URL`` and ``name``). With
    ``check_connection`` (PATCH /api/project, GraphQL) it must answer ``GET /health``; the CLI
    adds backends without asking them (§1.2), ``trusted``: the operator's, whatever their
    address."""
    project = get_project(project_id)
    if name is None:
        # The last segment of the name (multi-session names are <user>/<project>).
        name, url = parse_backend_spec(spec, project.name.rsplit("/", 1)[-1])
    else:
        url = spec.strip()
    _check_name(name)
    check_url(url)
    if (error := _duplicate(project_id, name)) is not None:
        raise error
    if check_connection:
        if client is None:
            raise DomainError("ml_backend", "ML backends cannot be reached from here")
        with released():
            reply = client.health(Target(url, trusted))
        if not reply.ok:
            message = f'ML backend with URL: "{url}" is not connected.'
            raise DomainError("invalid", message, {"url": url, "reason": reply.error})
    with write_transaction():
        lock_project(project_id)
        if (error := _duplicate(project_id, name)) is not None:
            raise error
        return MLBackend.create(project=project_id, name=name, url=url, trusted=trusted)


def set_backends(project_id: int, entries: Sequence[tuple[str, str]]) -> list[MLBackend]:
    """Replace the project's backends by ``entries`` ((name, url) pairs, in order), as editing
    ``ml_backends`` in Label Studio's settings file does: not asked for ``/health`` (backends
    that cannot be reached are kept, §1.1). What is known of a backend with the same name and
    URL (model version, batching, training job, the operator's trust) is kept."""
    names = [name for name, _url in entries]
    for name, url in entries:
        _check_name(name)
        check_url(url)
    if len(set(names)) != len(names):
        raise DomainError("invalid", "ML backend names must be unique", {"field": "name"})
    with write_transaction():
        lock_project(project_id)
        known = {(b.name, b.url): b for b in list_backends(project_id)}
        MLBackend.delete().where(MLBackend.project == project_id).execute()
        created = []
        for name, url in entries:
            old = known.get((name, url))
            created.append(
                MLBackend.create(
                    project=project_id,
                    name=name,
                    url=url,
                    model_version=old.model_version if old else None,
                    batch_predict=old.batch_predict if old else None,
                    train_job=old.train_job if old else None,
                    trusted=bool(old.trusted) if old else False,
                )
            )
        return created


def remove_backend(project_id: int, name: str) -> str:
    with write_transaction():
        backend = MLBackend.get_or_none(MLBackend.project == project_id, MLBackend.name == name)
        if backend is None:
            message = f'Can\'t remove ML backend with name "{name}": not found.'
            raise DomainError("not_found", message, {"name": name})
        backend.delete_instance()
        return name


@dataclass(frozen=True)
class BackendStatus:
    """What Label Studio's Model page shows for a backend (§5.3)."""

    connected: bool
    model_dir: str | None = None
    model_version: str | None = None
    is_training: bool | None = None
    error: str | None = None


def backend_status(client: MLClient, backend: MLBackend) -> BackendStatus:
    """``GET /health``, then ``POST /setup`` and ``GET /is_training`` (§5.3); the model version
    the backend answered is remembered."""
    project = get_project(backend.project_id)
    line = parsed_config(project).line
    with released():
        health = client.health(backend)
        if not health.ok:
            return BackendStatus(connected=False, error=health.error)
        body = health.body if isinstance(health.body, dict) else {}
        model_dir = body.get("model_dir")
        model_dir = None if model_dir is None else str(model_dir).rstrip("/").rsplit("/", 1)[-1]
        setup = client.setup(backend, backend.name, line)
        training = client.is_training(backend, backend.name)
    version = setup_version(setup)
    error = None if setup.ok else f"/setup failed: {setup.error}"
    is_training = None
    if training.ok and isinstance(training.body, dict):
        is_training = bool(training.body.get("is_training"))
    elif error is None:
        error = f"/is_training failed: {training.error}"
    if version is not None and version != backend.model_version:
        remember_versions({backend.id: version})
    return BackendStatus(True, model_dir, version, is_training, error)


def remember_versions(versions: dict[int, str]) -> None:
    """Store the model versions backends answered to ``/setup`` (a short write)."""
    if not versions:
        return
    with write_transaction():
        for backend_id, version in versions.items():
            MLBackend.update(model_version=version).where(MLBackend.id == backend_id).execute()


def setup_version(reply: Reply) -> str | None:
    """The ``model_version`` a successful ``/setup`` answered (None if it named none)."""
    if not reply.ok or not isinstance(reply.body, dict):
        return None
    version = reply.body.get("model_version")
    return None if version is None else str(version)


def notify_tasks_deleted(client: MLClient | None, project_id: int) -> None:
    """``POST /delete`` to every backend after all tasks were deleted (§3.7); errors are only
    logged (by the client)."""
    if client is None:
        return
    backends = list_backends(project_id)
    with released():
        for backend in backends:
            if not client.recently_failed(backend.url):
                client.delete(backend, backend.name)
