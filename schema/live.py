"""Subscriptions: live changes of a project, its tasks, completions, jobs and imports.

Each subscription resolves its project (or job) on a worker thread exactly as a query would,
then reads committed events from this process's hub (:mod:`server.services.events.hub`) on
the event loop. Events carry ids; what a subscriber selects beyond them (the task, the
counters, the job's state) is read once per event on a worker thread, however many subscribers
ask (``Event.memo``). Every field is a plain ``strawberry.subscription``, so a permission
class can be attached to it like to any query field.

On a connection served by our uvicorn protocol (``server/live_transport.py``) the events of a
subscription do not go through its generator at all: it registers a direct subscriber with the
hub, whose fan-out executes each event once per document, variables and role
(``schema/shared_events.py``) and writes the same bytes to every such connection; the generator
only waits for the end (the connection closed, or the subscriber fell behind: an error, as on
the queued path). Elsewhere (Starlette's test client, other servers) events are read from a
bounded queue and yielded to Strawberry one by one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from enum import Enum
from typing import Any, TypeVar

import strawberry

from schema.context import Info
from schema.ml import JobState
from schema.permissions import IsAdmin, IsAnnotator, inherits_access
from schema.scalars import JSON
from schema.shared_events import SUBSCRIPTION_EXECUTOR, render_event, sharing_key
from server.db import run_db
from server.errors import DomainError
from server.live_frames import encode_json
from server.live_operations import OPERATION
from server.live_socket import connection_state
from server.live_transport import frame_writer
from server.principal import Role
from server.services import events
from server.services.events.event import COMPLETION_KINDS, TASK_KINDS, Event
from server.services.events.hub import DirectSubscriber, LocalHub
from server.services.live_reads import (
    completion_as_json,
    job_state,
    project_counters,
    task_as_json,
)

T = TypeVar("T")
FINISHED_JOB_STATES = ("done", "failed")


async def _memo(event: Event, key: str, load: Callable[..., T], *args: Any) -> T:
    """``load(*args)`` on a worker thread, once per event and process."""
    future = event.memo.get(key)
    if future is None:
        future = asyncio.ensure_future(run_db(load, *args))
        event.memo[key] = future
    result: T = await asyncio.shield(future)
    return result


def _hub() -> LocalHub:
    hub = events.bus.local
    if not isinstance(hub, LocalHub):
        raise DomainError("not_allowed", "Subscriptions are not available here")
    return hub


async def _project_id(info: Info, project_id: int | None) -> int:
    project = await run_db(info.context.project, project_id)
    return int(project.id)


def _owner(info: Info) -> tuple[int | None, bool]:
    """The signed-in user whose subscription this is (it ends if they are disabled) and
    whether it was made with their login cookie (it ends too when they sign out)."""
    principal = getattr(info.context, "principal", None)
    if principal is None:
        return None, False
    return principal.user_id, principal.via == "session"


class _Events:
    """One subscriber of the hub, subscribed at once (not at the first read), so nothing
    committed after it was made is missed; :meth:`close` unsubscribes."""

    def __init__(self, info: Info, accepts: Callable[[Event], bool]) -> None:
        self.hub = _hub()
        self.subscriber = self.hub.subscribe(accepts, *_owner(info))
        self.state = connection_state(info.context.request)
        if self.state is not None:
            self.state.subscriptions += 1

    async def next(self) -> Event:
        return await self.subscriber.next()

    def close(self) -> None:
        self.hub.unsubscribe(self.subscriber)
        if self.state is not None:
            self.state.subscriptions -= 1


def _direct(
    info: Info, accepts: Callable[[Event], bool], to_payload: Callable[[Event], object]
) -> DirectSubscriber | None:
    """A direct subscriber for this operation, when its connection takes frames directly and
    the operation and its executor are known (else None: the queued path)."""
    writer = frame_writer(getattr(info.context.request, "scope", None))
    operation = OPERATION.get()
    executor = SUBSCRIPTION_EXECUTOR.get()
    if writer is None or operation is None or executor is None:
        return None
    key = sharing_key(executor)
    if key is None:
        return None
    prefix = f'{{"type":"{operation.result_type}","id":{encode_json(operation.id)},"payload":'

    def render(event: Event) -> Awaitable[bytes]:
        return render_event(executor, to_payload(event))

    return _hub().subscribe_direct(
        accepts, key, render, prefix.encode(), writer.write, *_owner(info)
    )


async def _stream(
    info: Info, accepts: Callable[[Event], bool], to_payload: Callable[[Event], T]
) -> AsyncGenerator[T, None]:
    """The results of committed events ``accepts`` takes, until the client stops (or falls
    behind): yielded one by one, or written by the hub's fan-out (:func:`_direct`)."""
    direct = _direct(info, accepts, to_payload)
    if direct is None:
        stream = _Events(info, accepts)
        try:
            while True:
                yield to_payload(await stream.next())
        finally:
            stream.close()
        return
    state = connection_state(info.context.request)
    if state is not None:
        state.subscriptions += 1
    try:
        await direct.ended  # None: the connection closed; the overflow error: fell behind
    finally:
        _hub().unsubscribe(direct)
        if state is not None:
            state.subscriptions -= 1


@strawberry.enum(description="What happened to tasks.")
class TaskChangeKind(Enum):
    CREATED = events.TASK_CREATED
    UPDATED = events.TASK_UPDATED
    LABELED = events.TASK_LABELED
    DELETED = events.TASK_DELETED


@strawberry.enum(description="What happened to completions.")
class CompletionChangeKind(Enum):
    CREATED = events.COMPLETION_CREATED
    UPDATED = events.COMPLETION_UPDATED
    DELETED = events.COMPLETION_DELETED


@inherits_access(Role.ANNOTATOR)
@strawberry.type(description="Tasks of a project changed (one task, or many by an import).")
class TaskChange:
    event: strawberry.Private[Event]

    @strawberry.field
    def kind(self) -> TaskChangeKind:
        return TaskChangeKind(self.event.kind)

    @strawberry.field
    def project_id(self) -> int:
        return self.event.project_id

    @strawberry.field(description="The changed tasks' ids (the first 500 of a bulk change).")
    def task_ids(self) -> list[int]:
        return list(self.event.ids)

    @strawberry.field(description="How many tasks changed.")
    def count(self) -> int:
        return self.event.count

    @strawberry.field(
        description="The task in Label Studio's JSON form (as `Task.lsJson`, task data not "
        "presigned), read after the change: for a change of one task that still exists."
    )
    async def task(self) -> JSON | None:
        if len(self.event.ids) != 1 or self.event.kind == events.TASK_DELETED:
            return None
        found: JSON | None = await _memo(self.event, "task", task_as_json, self.event.ids[0])
        return found


@inherits_access(Role.ANNOTATOR)
@strawberry.type(description="Completions of a project changed.")
class CompletionChange:
    event: strawberry.Private[Event]

    @strawberry.field
    def kind(self) -> CompletionChangeKind:
        return CompletionChangeKind(self.event.kind)

    @strawberry.field
    def project_id(self) -> int:
        return self.event.project_id

    @strawberry.field(description="The task of the completions (null: several tasks).")
    def task_id(self) -> int | None:
        task = self.event.data.get("task")
        return task if isinstance(task, int) else None

    @strawberry.field(description="The changed completions' ids (the first 500).")
    def completion_ids(self) -> list[int]:
        return list(self.event.ids)

    @strawberry.field
    def count(self) -> int:
        return self.event.count

    @strawberry.field(
        description="The completion in Label Studio's JSON form, read after the change: for a "
        "change of one completion that still exists."
    )
    async def completion(self) -> JSON | None:
        if len(self.event.ids) != 1 or self.event.kind == events.COMPLETION_DELETED:
            return None
        ident = self.event.ids[0]
        found: JSON | None = await _memo(self.event, "completion", completion_as_json, ident)
        return found


@inherits_access(Role.ANNOTATOR)
@strawberry.type(description="A project's counters, config or settings changed.")
class ProjectChange:
    event: strawberry.Private[Event]

    @strawberry.field
    def project_id(self) -> int:
        return self.event.project_id

    @strawberry.field(description="What changed: `counters`, `config` or `settings`.")
    def reason(self) -> str:
        return str(self.event.data.get("reason", "counters"))

    async def _counter(self, name: str) -> int:
        counters = await _memo(self.event, "counters", project_counters, self.event.project_id)
        return counters.get(name, 0)

    @strawberry.field(description="Counters read after the change.")
    async def task_count(self) -> int:
        return await self._counter("task_count")

    @strawberry.field
    async def labeled_task_count(self) -> int:
        return await self._counter("labeled_task_count")

    @strawberry.field
    async def completion_count(self) -> int:
        return await self._counter("completion_count")

    @strawberry.field
    async def prediction_count(self) -> int:
        return await self._counter("prediction_count")


@inherits_access(Role.ADMIN)
@strawberry.type(description="The state of a background job (prediction jobs).")
class JobProgress:
    job_id: int
    project_id: int
    state: JobState
    total: int
    done: int
    failed: int
    error: str | None


@inherits_access(Role.ADMIN)
@strawberry.type(description="Progress of an import into a project.")
class ImportProgress:
    event: strawberry.Private[Event]

    @strawberry.field
    def project_id(self) -> int:
        return self.event.project_id

    @strawberry.field(description="`running` while tasks are stored, `done` once committed.")
    def state(self) -> str:
        return str(self.event.data.get("state", "running"))

    @strawberry.field(description="Tasks stored so far (all of them once done).")
    def tasks(self) -> int:
        return int(self.event.data.get("tasks", 0))

    @strawberry.field(description="Completions imported (once done).")
    def completions(self) -> int | None:
        value = self.event.data.get("completions")
        return value if isinstance(value, int) else None

    @strawberry.field(description="Predictions imported (once done).")
    def predictions(self) -> int | None:
        value = self.event.data.get("predictions")
        return value if isinstance(value, int) else None


def _job_progress(values: dict[str, Any]) -> JobProgress:
    return JobProgress(**{**values, "state": JobState(values["state"])})


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Changes of a project (default: the current one): counters, config and "
        "settings, delivered after each commit.",
        permission_classes=[IsAnnotator],
    )
    async def project_changed(
        self, info: Info, project_id: int | None = None
    ) -> AsyncGenerator[ProjectChange, None]:
        pid = await _project_id(info, project_id)
        accepts = lambda e: e.project_id == pid and e.kind == events.PROJECT_UPDATED  # noqa: E731
        async for change in _stream(info, accepts, lambda e: ProjectChange(event=e)):
            yield change

    @strawberry.subscription(
        description="Tasks of a project created, updated, labeled (their first completion) "
        "or deleted.",
        permission_classes=[IsAnnotator],
    )
    async def task_changed(
        self, info: Info, project_id: int | None = None
    ) -> AsyncGenerator[TaskChange, None]:
        pid = await _project_id(info, project_id)
        accepts = lambda e: e.project_id == pid and e.kind in TASK_KINDS  # noqa: E731
        async for change in _stream(info, accepts, lambda e: TaskChange(event=e)):
            yield change

    @strawberry.subscription(
        description="Completions of a project created, updated, deleted.",
        permission_classes=[IsAnnotator],
    )
    async def completion_changed(
        self, info: Info, project_id: int | None = None
    ) -> AsyncGenerator[CompletionChange, None]:
        pid = await _project_id(info, project_id)
        accepts = lambda e: e.project_id == pid and e.kind in COMPLETION_KINDS  # noqa: E731
        async for change in _stream(info, accepts, lambda e: CompletionChange(event=e)):
            yield change

    @strawberry.subscription(
        description="A job's state now, then after each change, until it is done or failed.",
        permission_classes=[IsAdmin],
    )
    async def job_progress(self, info: Info, id: int) -> AsyncGenerator[JobProgress, None]:
        job = await run_db(info.context.job, id)
        accepts = lambda e: e.kind == events.JOB_PROGRESS and id in e.ids  # noqa: E731
        stream = _Events(info, accepts)  # before the state is read: no change falls between
        try:
            current = await run_db(job_state, job.id)
            yield _job_progress(current)
            while current["state"] not in FINISHED_JOB_STATES:
                event = await stream.next()
                current = await _memo(event, f"job:{id}", job_state, id)
                yield _job_progress(current)
        finally:
            stream.close()

    @strawberry.subscription(
        description="Progress of imports into a project.", permission_classes=[IsAdmin]
    )
    async def import_progress(
        self, info: Info, project_id: int | None = None
    ) -> AsyncGenerator[ImportProgress, None]:
        pid = await _project_id(info, project_id)
        accepts = lambda e: e.project_id == pid and e.kind == events.IMPORT_PROGRESS  # noqa: E731
        async for change in _stream(info, accepts, lambda e: ImportProgress(event=e)):
            yield change
