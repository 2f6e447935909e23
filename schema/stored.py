"""The server's own stored operations (the REST facade): parsed and validated once per document.

A REST request runs one stored operation. Through ``Schema.execute_sync`` each run would set up
Strawberry's execution context and extension hooks, look the document up in the parse and
validation caches (hashing its whole syntax tree for the latter) and measure nothing it needs:
about half the time of a small operation. Here the document is parsed and validated the first
time it runs and kept with what the schema's extensions would derive from it; each run then
calls graphql-core's executor on the same schema, resolvers and scalars, and does per request
only what the extensions do per request:

* :class:`schema.context.SessionWrites`: ``context.writes`` is set for a mutation;
* :class:`schema.errors.DomainErrors`: errors get their ``extensions.code`` (unexpected ones
  are logged and masked);
* :class:`schema.limits.GuardedDocuments`: nothing; stored operations are trusted (a test keeps
  them within the default limits all the same).

Their variables' signatures are made once too (:mod:`schema.stored_signatures`).

They run in :class:`AcyclicExecution`: graphql-core's executor but for one reference cycle
(its resolver helpers are its own bound methods), which kept every request's execution
state, context and Starlette request alive until a garbage collection found them, ~70-140
objects per request for the collector to walk and free.

A test pins the schema's extension list, so an extension added later has to be given its
stored-operation counterpart here too.

:class:`OperationThreads` runs them off the event loop on a small thread pool the application's
lifespan owns: the one thread hop of a REST request, at about half the CPU of
``anyio.to_thread.run_sync``; its size bounds the number of concurrent operations as anyio's
default limiter did.

Short writes (a completion, a task: ``Operation.short_write`` in the REST facade,
:mod:`schema.write_lane` for ``/graphql``) run on a small pool of their own, the *write lane*:
one thread on SQLite, :data:`POSTGRES_LANE_THREADS` on PostgreSQL. SQLite runs one write
transaction at a time (the process's write turn, :func:`server.db.write_transaction`), so 32
annotators saving at once were up to 32 threads queued on that turn, each statement of the
holder releasing the interpreter lock to one of them and waiting to get it back: 10-15 context
switches of the process per completion POST. On the lane they run one after another on one
thread: 7-10 switches, and a quarter less CPU per POST under 32 writers
(``bench/concurrent_writers.py``). PostgreSQL lets writers of different tasks commit together,
and needs several at once to flush their commits together; there 32 writers on the shared
pool cost ~37 switches per POST, and 8 threads of the lane cut that by a third (p99 -30 %).
Reads keep the shared pool, so a queue of writes never holds them up; long writes (imports,
bulk actions) keep it too, so that they never hold up the lane. A write's wait for its turn
counts from when it was queued (:func:`server.db.mark_write_queued`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    validate,
)
from graphql.execution.incremental.incremental_executor import IncrementalExecutor
from strawberry.execution import optimized_is_awaitable
from strawberry.types.execution import ExecutionResult

from schema import stored_signatures
from schema.acyclic import weak_async_helpers
from schema.context import Context
from schema.errors import process_error
from server.db import mark_write_queued, with_connection

P = ParamSpec("P")
T = TypeVar("T")

# As many operations at once as anyio's default thread limiter allowed.
OPERATION_THREADS = 40
# The write lane's threads on PostgreSQL: writers of different tasks commit together there, and
# commits flushed together cost one flush; 8 gave the best figures of 4, 8 and the shared pool.
POSTGRES_LANE_THREADS = 8


class AcyclicExecution(IncrementalExecutor):
    """graphql-core's executor (the one :func:`graphql.execute` uses) whose resolver helpers
    (``info.async_helpers``) reach it through a weak reference instead of its bound methods
    (:mod:`schema.acyclic`): it is then freed by reference counting as soon as the operation
    returns, with the context and request it holds, instead of waiting for the cyclic garbage
    collector."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.async_helpers = weak_async_helpers(self)


@dataclass(frozen=True)
class PreparedOperation:
    """A stored document after parsing and validation (``errors`` when it is not valid)."""

    document: DocumentNode | None
    errors: tuple[GraphQLError, ...]
    is_mutation: bool


def prepare(schema: GraphQLSchema, source: str, operation_name: str) -> PreparedOperation:
    try:
        document = parse(source)
    except GraphQLError as error:
        return PreparedOperation(None, (process_error(error),), False)
    errors = validate(schema, document)
    if errors:
        return PreparedOperation(None, tuple(process_error(e) for e in errors), False)
    stored_signatures.keep(schema, document)
    is_mutation = any(
        isinstance(node, OperationDefinitionNode)
        and node.name is not None
        and node.name.value == operation_name
        and node.operation is OperationType.MUTATION
        for node in document.definitions
    )
    return PreparedOperation(document, (), is_mutation)


class StoredOperations:
    """Prepared stored documents by (source, operation name); a source is prepared once."""

    def __init__(self, schema: GraphQLSchema) -> None:
        stored_signatures.install()
        self._schema = schema
        self._prepared: dict[tuple[str, str], PreparedOperation] = {}
        self._lock = threading.Lock()

    def prepared(self, source: str, operation_name: str) -> PreparedOperation:
        key = (source, operation_name)
        found = self._prepared.get(key)
        if found is None:
            with self._lock:
                found = self._prepared.get(key)
                if found is None:
                    found = prepare(self._schema, source, operation_name)
                    self._prepared[key] = found
        return found

    def execute(
        self, source: str, variables: dict[str, Any], context: Any, operation_name: str
    ) -> ExecutionResult:
        """Run a stored operation synchronously (on the caller's thread)."""
        prepared = self.prepared(source, operation_name)
        if prepared.document is None:
            return ExecutionResult(data=None, errors=list(prepared.errors))
        if isinstance(context, Context):
            context.writes = prepared.is_mutation
        try:
            result = execute(
                self._schema,
                prepared.document,
                variable_values=variables,
                context_value=context,
                operation_name=operation_name,
                executor_class=AcyclicExecution,
                is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
            )
            if inspect.isawaitable(result):
                raise RuntimeError(f"{operation_name} did not complete synchronously")
        except Exception as exc:  # as Strawberry's execute_sync: an error answer, logged
            error = GraphQLError(str(exc), original_error=exc)
            return ExecutionResult(data=None, errors=[process_error(error)])
        errors = [process_error(e) for e in result.errors] if result.errors else None
        return ExecutionResult(data=result.data, errors=errors)


class OperationThreads:
    """The worker threads stored operations run on, each call holding a pooled database
    connection (as :func:`server.db.run_db`). Made and closed by the application's lifespan.

    A pool as small as a pool gets: calls wait in one queue, up to ``size`` threads (started
    as calls find none idle, as ``ThreadPoolExecutor`` does) take them in order, and each
    answer goes back to the calling event loop's future with one ``call_soon_threadsafe``.
    Under uvloop a call costs ~40 µs of CPU, against ~55 µs through ``loop.run_in_executor``
    and ~80 µs through ``anyio.to_thread.run_sync`` (whose capacity limiter, cancel scope and
    two-way futures this path needs none of). A caller cancelled while its call runs stops
    waiting; the call still finishes (and commits) on its thread, as a request whose client
    went away did before."""

    def __init__(
        self,
        size: int = OPERATION_THREADS,
        name: str = "labelgraph-operation",
        *,
        queued_writes: bool = False,
    ) -> None:
        self._size = size
        self._name = name
        # the write lane: a call's write wait counts from when it was queued (server.db)
        self._queued_writes = queued_writes
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._idle = 0  # threads done with a call and not yet given another (under _lock):
        # a plain count, where a ``threading.Semaphore`` (Python code around a Condition)
        # cost ~4,000 instructions a call
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        work = functools.partial(with_connection, fn, *args, **kwargs)
        context = contextvars.copy_context()
        if self._queued_writes:
            context.run(mark_write_queued)
        call = functools.partial(context.run, work)
        self._submit((loop, future, call))
        return await future

    def _submit(self, call: _Call) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the operation threads are closed")
            if self._idle:
                self._idle -= 1
            elif len(self._threads) < self._size:
                thread = threading.Thread(
                    target=self._work,
                    name=f"{self._name}-{len(self._threads)}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()
            self._queue.put(call)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            loop, future, call = item
            try:
                outcome: tuple[Any, Any] = (_settle, call())
            except BaseException as exc:  # handed to the caller, as an executor would
                outcome = (_fail, exc)
            # idle before the caller hears back: its next call finds this thread, not a new one
            with self._lock:
                self._idle += 1
            _answer(loop, outcome[0], future, outcome[1])
            del item, future, call, outcome

    def close(self) -> None:
        """Let queued and running operations finish, then stop the threads."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join()


_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


def _answer(loop: asyncio.AbstractEventLoop, settle: Callable[..., None], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for the answer
        loop.call_soon_threadsafe(settle, *args)


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():  # not when the caller was cancelled meanwhile
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
