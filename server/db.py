"""The database: one proxy, bound at start-up to SQLite (default) or PostgreSQL.

Peewee connections are thread-local. All database work runs on worker threads via
:func:`run_db`, which takes a pooled connection for the duration of the call, so the event
loop never waits on the database.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, ParamSpec, TypeVar
from urllib.parse import parse_qs, unquote, urlparse

import anyio.to_thread
import peewee
from playhouse.pool import MaxConnectionsExceeded

from server import sqlite_gate
from server.db_proxy import DatabaseProxy
from server.errors import DomainError
from server.lean_pool import SqlitePool
from server.pg_pool import PostgresPool
from server.services.events import pending

log = logging.getLogger(__name__)
database = DatabaseProxy()

P = ParamSpec("P")
T = TypeVar("T")
M = TypeVar("M", bound=peewee.Model)

DEFAULT_WRITE_WAIT = 60.0  # seconds (the ``write_wait`` setting)
RETRY_AFTER = 5  # seconds a client refused as busy is told to wait before it retries
DEFAULT_POOL_WAIT = 30.0  # seconds a request waits for a pooled connection (``db_pool_wait``)
SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "normal",
    "cache_size": -64000,
    "temp_store": "memory",
}


_write_wait = DEFAULT_WRITE_WAIT  # of the database :func:`connect` bound
_pool_wait = DEFAULT_POOL_WAIT  # likewise


def write_slots(pool_size: int) -> int:
    """How many write transactions of a process run at once on PostgreSQL: all but an eighth of
    the pool (at least one connection), which stays for reads (:func:`_postgres_write_slot`).
    With a quarter kept, 32 writers were 5 to 13 % slower (fewer commits flushed together)."""
    return max(1, pool_size - max(1, pool_size // 8))


def connect(
    url: str,
    pool_size: int = 16,
    prepared_statements: int = 256,
    write_wait: float = DEFAULT_WRITE_WAIT,
    pool_wait: float = DEFAULT_POOL_WAIT,
) -> peewee.Database:
    """Make a pooled database for ``url`` and bind the global proxy to it."""
    global _write_wait, _pool_wait, _postgres_writers
    db = make_database(url, pool_size, prepared_statements, write_wait, pool_wait)
    _write_wait, _pool_wait = write_wait, pool_wait
    _postgres_writers = FairSemaphore(write_slots(pool_size))
    database.initialize(db)
    return db


def make_database(
    url: str,
    pool_size: int = 16,
    prepared_statements: int = 256,
    write_wait: float = DEFAULT_WRITE_WAIT,
    pool_wait: float = DEFAULT_POOL_WAIT,
) -> peewee.Database:
    """A pooled database for ``url``. On PostgreSQL each connection prepares up to
    ``prepared_statements`` of the statements it runs repeatedly (:mod:`server.pg_prepare`;
    0: none). A write waits for a lock at most ``write_wait`` seconds: SQLite's busy timeout,
    PostgreSQL's ``lock_timeout``; a request waits at most ``pool_wait`` seconds for a
    connection."""
    wait_ms = max(1, round(write_wait * 1000))
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path[1:] if parsed.path.startswith("/") else parsed.path)
        if url.startswith("sqlite:////"):
            path = "/" + path.lstrip("/")
        sqlite: peewee.Database = SqlitePool(
            path or ":memory:",
            pragmas={**SQLITE_PRAGMAS, "busy_timeout": wait_ms},
            max_connections=pool_size,
            stale_timeout=300,
            timeout=pool_wait,
            check_same_thread=False,
        )
        return sqlite
    if parsed.scheme in ("postgres", "postgresql"):
        params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        if parsed.username:
            params["user"] = unquote(parsed.username)
        if parsed.password:
            params["password"] = unquote(parsed.password)
        if parsed.netloc.rsplit("@", 1)[-1].split(":")[0]:
            # Keep the host's case and decode it: %2Fvar%2Frun%2Fpostgresql is a socket dir.
            params["host"] = unquote(parsed.netloc.rsplit("@", 1)[-1].rsplit(":", 1)[0])
        if parsed.port:
            params["port"] = parsed.port
        # Set for every connection at its start; options in the URL come after, so they win.
        params["options"] = f"-c lock_timeout={wait_ms} {params.get('options', '')}".rstrip()
        postgres: peewee.Database = PostgresPool(
            unquote(parsed.path.lstrip("/")),
            max_connections=pool_size,
            stale_timeout=300,
            timeout=pool_wait,
            prepared_statements=prepared_statements,
            **params,
        )
        return postgres
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///FILE or postgresql://…")


def is_sqlite() -> bool:
    return isinstance(database.obj, peewee.SqliteDatabase)


class FairSemaphore:
    """``permits`` holders at a time, handed to waiters in arrival order (``threading``'s
    primitives let a newcomer take a permit before threads that have waited longer, which
    shows as a long tail of waits)."""

    def __init__(self, permits: int = 1) -> None:
        self._mutex = threading.Lock()
        self._free = permits
        self._waiters: collections.deque[threading.Lock] = collections.deque()

    def try_acquire(self) -> bool:
        """Take a permit if one is free (no wait); False otherwise."""
        with self._mutex:
            if not self._free:
                return False
            self._free -= 1
            return True

    def acquire(self, timeout: float) -> bool:
        """Take a permit, waiting at most ``timeout`` seconds; False if none was taken."""
        with self._mutex:
            if self._free:
                self._free -= 1
                return True
            waiter = threading.Lock()
            waiter.acquire()
            self._waiters.append(waiter)
        if waiter.acquire(timeout=max(0.0, timeout)):
            return True  # handed over by release()
        with self._mutex:
            try:
                self._waiters.remove(waiter)
            except ValueError:  # handed over as the wait timed out: ours after all
                return True
            return False

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().release()  # stays taken, by the next waiter
            else:
                self._free += 1

    def locked(self) -> bool:
        """Whether every permit is taken."""
        return not self._free


# SQLite has one write lock per database file. Threads of this process wait for it here, in
# arrival order, on a lock handed to the next waiter when the holder commits, rather than in
# SQLite's busy handler, which sleeps in growing steps (up to 100 ms) and wakes to find the
# lock taken again: with 32 writers that made the p99 of a completion POST 0.6 to 1 s. Readers
# never take it (WAL: they read their snapshot while a write runs). The holder then queues
# with the writers of other processes on the file's writer gate (:mod:`server.sqlite_gate`).
_sqlite_writer = FairSemaphore(1)


# When the write of this context was queued before it could ask for its turn (the write lane,
# schema/stored.py): its wait of ``write_wait`` seconds counts from then, the queue included,
# so writes queued behind one that waits the whole write wait are not each given a whole one
# after it.
_queued_since: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "labelgraph_write_queued_since", default=None
)


def mark_write_queued() -> None:
    """Count the write wait of this context's next write transaction from now."""
    _queued_since.set(time.monotonic())


def _write_wait_start(now: float) -> float:
    """When this write's wait began: when it was queued (:func:`mark_write_queued`), else
    ``now``. Taken once: the context's later writes wait from their own start."""
    queued_since = _queued_since.get()
    if queued_since is None:
        return now
    _queued_since.set(None)
    return min(now, queued_since)


@contextlib.contextmanager
def _sqlite_write_turn() -> Iterator[None]:
    """This process's turn to write to SQLite, then the turn among processes, both within one
    wait of ``write_wait`` seconds (from when the write was queued, if it was:
    :func:`mark_write_queued`): past it the write is refused (:func:`database_busy`), e.g.
    behind an import that holds the turn for its whole transaction. A writer that has to wait
    hands its pooled connection back meanwhile (:func:`released`): otherwise writers queued
    behind an import would hold every connection, and reads would wait for the import too. A
    file system without ``flock`` has no turn among processes: SQLite's busy timeout waits."""
    now = time.monotonic()
    deadline = _write_wait_start(now) + _write_wait
    turn = _sqlite_writer
    if not turn.try_acquire() and not _acquire_released(
        turn.acquire, turn.release, max(0.0, deadline - now)
    ):
        raise database_busy("another writer of this process held the turn")
    try:
        gate = sqlite_gate.gate_for(database.obj)
        gated = gate is not None and gate.try_acquire()
        if gate is not None and not gated and gate.working:
            wait = max(0.0, deadline - time.monotonic())
            gated = _acquire_released(gate.acquire, gate.release, wait)
            if not gated and gate.working:
                raise database_busy("a writer of another process held the turn")
        try:
            yield
        finally:
            if gated:
                assert gate is not None
                gate.release()
    finally:
        turn.release()


# PostgreSQL lets writers of different tasks run at once, but a writer that meets a lock (a
# completion saved while a bulk writer holds its project, or while an import counts its tasks
# at its end) waits inside its transaction, holding a pooled connection. Writers queued behind
# an import took every connection, and reads waited for the import as well (a read every 0.1 s
# during a 400k-task import: one answered, after 13.8 s).
# So write transactions take one of :func:`write_slots` first, and a writer that has to wait for
# a slot hands its connection back meanwhile: some of the pool always serves reads.
_postgres_writers = FairSemaphore(write_slots(16))
_SLOT_WAIT_HOLDING = 0.05  # seconds a writer waits for a slot before it hands its connection back


@contextlib.contextmanager
def _postgres_write_slot() -> Iterator[float | None]:
    """A write slot of this process (PostgreSQL), taken within ``write_wait`` seconds (from
    when the write was queued, if it was: :func:`mark_write_queued`); yields the seconds left
    of that wait if the writer waited longer than it holds its connection (None otherwise: it
    waits for locks the whole write wait, a few milliseconds more at most, and saves a
    statement)."""
    slots = _postgres_writers  # the one released below, should connect() bind another
    now = time.monotonic()
    start = _write_wait_start(now)
    deadline = start + _write_wait
    # A wait in the queue shortens the lock wait only when it is a twentieth of the write wait
    # or more: not one statement more per write of a busy lane for a few milliseconds
    waited = now - start > max(_SLOT_WAIT_HOLDING, _write_wait / 20)
    # Under a steady load of many writers a slot frees within milliseconds: keep the
    # connection for that long rather than hand it back and take one again at every write;
    # only a longer wait (an import holding the project) gives it back.
    holding = max(0.0, min(_SLOT_WAIT_HOLDING, deadline - now))
    if not slots.try_acquire() and not slots.acquire(timeout=holding):
        wait = max(0.0, deadline - time.monotonic())
        if not _acquire_released(slots.acquire, slots.release, wait):
            raise database_busy("every write slot of this process was taken")
        waited = True
    try:
        # a write whose wait is over by now still runs if it meets no lock, as on SQLite
        yield max(0.001, deadline - time.monotonic()) if waited else None
    finally:
        slots.release()


def _acquire_released(
    acquire: Callable[[float], bool], release: Callable[[], None], timeout: float
) -> bool:
    """``acquire(timeout)`` with this thread's pooled connection handed back meanwhile
    (:func:`released`). If no connection can be had again afterwards, what was taken is
    given back before that error is raised: a writer turn kept by a failed request would
    stop every later write."""
    taken = False
    try:
        with released():
            taken = acquire(timeout)
    except BaseException:
        if taken:
            release()
        raise
    return taken


def database_busy(reason: str) -> DomainError:
    """The error of a write that did not get its turn or a lock within ``write_wait`` seconds
    (or lost a deadlock): REST 503, logged with ``reason``."""
    log.warning("a write was refused (write wait %g s): %s", _write_wait, reason)
    return _busy(
        "The database is busy with another write (a large import, say) and this one could not "
        f"get its turn (write wait: {_write_wait:g} s). Try again in a moment."
    )


def no_free_connection() -> DomainError:
    """The error of a request that waited ``pool_wait`` seconds for one of the process's
    pooled connections (``db_pool_size``) and got none: every one was held by other requests
    (long exports, say). REST 503 with ``Retry-After``, as a write refused as busy."""
    log.warning("a request got no database connection within %g s", _pool_wait)
    return _busy(
        f"Every database connection of this server process was in use for {_pool_wait:g} s. "
        "Try again in a moment."
    )


def _busy(message: str) -> DomainError:
    """A refusal worth retrying later: code ``database_busy`` (REST 503 with Retry-After)."""
    return DomainError("database_busy", message, {"retryAfter": RETRY_AFTER})


_SQLITE_BUSY = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (the primary codes of extended ones)
_POSTGRES_BUSY = ("55P03", "40P01", "40001")  # lock_not_available, deadlock, serialization


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` (a driver's error, or peewee's wrapping of one) says a lock was not
    granted in time: another writer held it, and retrying later may succeed."""
    seen: set[int] = set()
    candidates: list[Any] = [exc]
    while candidates:
        error = candidates.pop()
        if not isinstance(error, BaseException) or id(error) in seen:
            continue
        seen.add(id(error))
        code = getattr(error, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in _SQLITE_BUSY:
            return True
        if getattr(error, "pgcode", None) in _POSTGRES_BUSY:
            return True
        # peewee re-raises a driver's error as its own, holding the original as first argument
        candidates += [*error.args[:1], error.__cause__, error.__context__]
    return False


@contextlib.contextmanager
def write_transaction(*, bookkeeping: bool = False) -> Iterator[None]:
    """A transaction that writes. On SQLite it takes the write lock up front
    (``BEGIN IMMEDIATE``), after the process's writer turn (:func:`_sqlite_write_turn`), so
    that concurrent writers queue in order instead of failing when they upgrade a read
    snapshot or sleeping in the busy handler.

    On PostgreSQL the outermost one takes a write slot first (:func:`_postgres_write_slot`);
    a writer that waited for it waits for locks only for what is left of the write wait.
    ``bookkeeping`` writes take none: short writes of rows no other writer holds for long (a
    background job's lease), which must not queue behind writers waiting for an import.

    Events the services emit inside it are published only once the outermost one commits
    (:mod:`server.services.events.pending`), after the turn is handed on."""
    outermost = not database.in_transaction()
    with pending.collecting(outermost) as frame:
        if outermost and is_sqlite():
            with _sqlite_write_turn(), database.atomic("IMMEDIATE"):
                yield
                pending.before_commit(frame)
        elif outermost and not bookkeeping:
            with _postgres_write_slot() as left, database.atomic():
                if left is not None:
                    milliseconds = max(1, round(left * 1000))
                    database.execute_sql(
                        "SELECT set_config('lock_timeout', %s, true)", (f"{milliseconds}ms",)
                    )
                yield
                pending.before_commit(frame)
        else:
            with database.atomic():
                yield
                pending.before_commit(frame)


# Namespaces of the transaction-level advisory locks (PostgreSQL's two-key form, whose keys
# never meet the one-key locks such as the migration lock's).
ADVISORY_PROJECT = 0x1A8E2
ADVISORY_RANK_BLOCKS = 0x1A8E3
ADVISORY_RANK_FOLD = 0x1A8E4
ADVISORY_PROJECT_IMPORT = 0x1A8E5


def _advisory_key32(key: int) -> int:
    """A key as PostgreSQL's two-key advisory locks take it (int4): keys beyond 32 bits wrap."""
    return (key + 2**31) % 2**32 - 2**31


def advisory_xact_lock_sql(
    namespace: int, key: int, *, shared: bool = False
) -> tuple[str, tuple[int, int]]:
    """:func:`advisory_xact_lock`'s statement and parameters (PostgreSQL)."""
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    return f"SELECT {function}(%s, %s)", (namespace, _advisory_key32(key))


def advisory_xact_lock(namespace: int, key: int, *, shared: bool = False) -> None:
    """Take a PostgreSQL advisory lock on ``(namespace, key)`` until the transaction ends,
    shared or exclusive (keys beyond 32 bits wrap: two keys sharing a lock only wait for each
    other). A no-op on SQLite, whose write transactions are serialised."""
    if is_sqlite():
        return
    database.execute_sql(*advisory_xact_lock_sql(namespace, key, shared=shared))


def try_advisory_xact_lock(namespace: int, key: int) -> bool:
    """PostgreSQL: take the exclusive advisory lock on ``(namespace, key)`` until the
    transaction ends if no other transaction holds it; whether it was taken (no wait)."""
    cursor = database.execute_sql(
        "SELECT pg_try_advisory_xact_lock(%s, %s)", (namespace, _advisory_key32(key))
    )
    return bool(cursor.fetchone()[0])


_HELD = object()  # with_connection's entry on the connection state's context stack


def with_connection(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``fn`` holding a pooled connection (reusing the thread's open one). If none came
    free within ``pool_wait`` seconds, raise :func:`no_free_connection`'s error."""
    db = database.obj
    state = db._state
    if not state.closed:
        return fn(*args, **kwargs)
    try:
        db.connect()
    except MaxConnectionsExceeded:
        raise no_free_connection() from None
    # peewee's connection_context(), inline: the context on the state's stack keeps an inner
    # connection_context() from closing the connection, and :func:`released` carries it over
    state.ctx.append(_HELD)
    try:
        return fn(*args, **kwargs)
    finally:
        state.ctx.pop()
        if not state.ctx:
            db.close()


@contextlib.contextmanager
def released() -> Iterator[None]:
    """Hand this thread's connection back to the pool while slow work that does not need the
    database runs (calls to ML backends), and take one again afterwards. Inside a transaction
    the connection is kept: network calls never belong there."""
    if database.is_closed() or database.in_transaction():
        yield
        return
    state = database._state
    contexts = list(state.ctx)  # the connection_context()s that will close it at their end
    database.close()
    try:
        yield
    finally:
        try:
            database.connect(reuse_if_open=True)
        except MaxConnectionsExceeded:
            raise no_free_connection() from None
        finally:
            database._state.ctx.extend(contexts)


async def run_db(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking database work on a worker thread with its own pooled connection."""
    call = functools.partial(with_connection, fn, *args, **kwargs)
    return await anyio.to_thread.run_sync(call)


def bulk_insert(model: type[peewee.Model], columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (tuples of database values, in ``columns`` order) in one round trip per
    chunk: ``executemany`` on SQLite, multi-row ``VALUES`` on PostgreSQL. Call inside a
    transaction; values must already be database values (JSON dumped)."""
    if not rows:
        return
    table = model._meta.table_name
    cols = ", ".join(f'"{c}"' for c in columns)
    if is_sqlite():
        marks = ", ".join("?" for _ in columns)
        database.cursor().executemany(f'INSERT INTO "{table}" ({cols}) VALUES ({marks})', rows)
        return
    from psycopg2.extras import execute_values

    execute_values(
        database.cursor(), f'INSERT INTO "{table}" ({cols}) VALUES %s', rows, page_size=1000
    )


class PreparedSelect(Generic[M]):
    """A model SELECT on a hot path whose SQL is built once per kind of database.

    Peewee builds the SQL of a query anew each time; for a lookup by primary key of a
    13-column row that costs ~20x what SQLite takes to answer it. ``build`` makes the query
    from integer arguments (one per ``arity``), each used exactly once as a parameter; it is
    called once per database class with distinct placeholder integers, whose positions in the
    parameters are then filled with each call's values. Rows come back as model instances,
    converted as peewee converts them."""

    _PLACEHOLDER_BASE = -(2**62)

    def __init__(
        self, model: type[M], build: Callable[..., peewee.ModelSelect[M]], arity: int
    ) -> None:
        self.model = model
        self.build = build
        self.arity = arity
        self._compiled: dict[type[peewee.Database], tuple[str, list[Any], list[int]]] = {}

    def _sql(self) -> tuple[str, list[Any], list[int]]:
        kind = type(database.obj)
        compiled = self._compiled.get(kind)
        if compiled is None:
            placeholders = [self._PLACEHOLDER_BASE - i for i in range(self.arity)]
            sql, params = self.build(*placeholders).sql()
            params = list(params)
            slots = [params.index(p) for p in placeholders]
            if sorted(params.count(p) for p in placeholders) != [1] * self.arity:
                raise ValueError("each argument must be used exactly once")
            compiled = (sql, params, slots)
            self._compiled[kind] = compiled
        return compiled

    def _query(self, args: tuple[int, ...]) -> Any:
        """The executed cursor for these arguments."""
        if len(args) != self.arity:
            raise TypeError(f"expected {self.arity} arguments, got {len(args)}")
        sql, template, slots = self._sql()
        params = list(template)
        for slot, value in zip(slots, args, strict=True):
            params[slot] = int(value)
        return database.execute_sql(sql, params)

    def first(self, *args: int) -> M | None:
        """The first row for these arguments (None when there is none)."""
        found = model_rows(self.model, self._query(args), 1)
        return found[0] if found else None

    def first_after(self, statement: str, statement_params: Sequence[Any], *args: int) -> M | None:
        """:meth:`first`, with ``statement`` run just before it in the same round trip
        (PostgreSQL only: psycopg2 sends ``statement; select`` as one simple query, run in
        order, and the cursor holds the select's rows)."""
        if is_sqlite():
            raise RuntimeError("first_after is for PostgreSQL")
        sql, template, slots = self._sql()
        params = list(template)
        for slot, value in zip(slots, args, strict=True):
            params[slot] = int(value)
        cursor = database.execute_sql(f"{statement}; {sql}", [*statement_params, *params])
        found = model_rows(self.model, cursor, 1)
        return found[0] if found else None

    def rows(self, *args: int) -> list[M]:
        """All rows for these arguments, built straight from the cursor (:func:`model_rows`)."""
        return model_rows(self.model, self._query(args))


class PreparedSelects(Generic[M]):
    """:class:`PreparedSelect` for a query whose number of arguments varies (``IN`` lists): one
    per argument count up to ``max_arity`` (then the query is built each time)."""

    def __init__(
        self, model: type[M], build: Callable[..., peewee.ModelSelect[M]], max_arity: int
    ) -> None:
        self.model = model
        self.build = build
        self.max_arity = max_arity
        self._by_arity: dict[int, PreparedSelect[M]] = {}

    def rows(self, args: list[int]) -> list[M]:
        if len(args) > self.max_arity:
            return list(self.build(*args))
        prepared = self._by_arity.get(len(args))
        if prepared is None:
            prepared = PreparedSelect(self.model, self.build, len(args))
            self._by_arity[len(args)] = prepared
        return prepared.rows(*args)


# Python types a column's values already have when peewee's conversion would leave them as
# they are (``int(v)`` of an int, ``bool(v)`` of a bool...): those values are not converted.
_NATIVE_TYPES: tuple[tuple[type[peewee.Field], type], ...] = (
    (peewee.BooleanField, bool),
    (peewee.IntegerField, int),
    (peewee.FloatField, float),
    (peewee._StringField, str),
)


def _native_type(field: peewee.Field) -> type | None:
    """The type of the values ``field`` keeps as they are (None: convert every value). Only for
    the plain kinds: a subclass with its own conversion (``TimestampField``) converts all."""
    if isinstance(field, peewee.ForeignKeyField):
        field = field.rel_field
    for kind, native in _NATIVE_TYPES:
        if isinstance(field, kind):
            cls: Any = type(field)
            plain = cls.python_value is peewee.Field.python_value and cls.adapt is kind.adapt
            return native if plain else None
    return None


_ROW_BUILDERS: dict[tuple[type[peewee.Model], tuple[str, ...]], Any] = {}


def _row_builder(model: type[peewee.Model], columns: tuple[str, ...]) -> Any:
    """A function making ``model`` instances of rows of ``columns`` (None when a column is not
    a field of ``model``, unless named ``lg_…``: set as an attribute, unconverted, as peewee sets
    a selected value that is not a field). Its loop is written out per column: each value is
    kept when it is None or already of its field's Python type, else passed to the field's
    ``python_value`` (as peewee does; always for fields of other kinds, such as JSON)."""
    by_column = {field.column_name: field for field in model._meta.sorted_fields}
    items = []
    extras = []
    namespace: dict[str, Any] = {"new": object.__new__, "model": model}
    for index, column in enumerate(columns):
        field = by_column.get(column)
        if field is None and column.startswith("lg_"):  # an attribute, as peewee sets it
            extras.append(f"        attributes[{column!r}] = v{index}\n")
            continue
        if field is None:
            return None
        native = _native_type(field)
        namespace[f"c{index}"] = field.python_value
        value = f"v{index}"
        if native is None:
            kept = f"{value} is None"
        else:
            namespace[f"t{index}"] = native
            kept = f"{value} is None or {value}.__class__ is t{index}"
        items.append(f"{field.name!r}: {value} if {kept} else c{index}({value})")
    values = ", ".join(f"v{i}" for i in range(len(columns)))
    source = (
        "def build(rows):\n"
        "    made = []\n"
        "    for row in rows:\n"
        f"        ({values},) = row\n"
        "        instance = new(model)\n"
        "        attributes = instance.__dict__\n"
        f"        attributes['__data__'] = {{{', '.join(items)}}}\n"
        "        attributes['_dirty'] = set()\n"
        "        attributes['__rel__'] = {}\n"
        f"{''.join(extras)}"
        "        made.append(instance)\n"
        "    return made\n"
    )
    exec(compile(source, f"<rows of {model.__name__}>", "exec"), namespace)
    return namespace["build"]


def model_rows(model: type[M], cursor: Any, limit: int | None = None) -> list[M]:
    """The rows of ``cursor`` (a SELECT of ``model``'s columns) as model instances, the same
    as peewee makes them (values converted by each field's ``python_value``, nothing dirty)
    at a fraction of the cost: peewee sets each value through ``Model.__init__`` and the
    field's descriptor; here each row's ``__data__`` is made in one go by a function written
    for the columns (:func:`_row_builder`). ``limit``: at most that many rows are read."""
    key = (model, tuple(d[0] for d in cursor.description))
    if key not in _ROW_BUILDERS:
        _ROW_BUILDERS[key] = _row_builder(model, key[1])
    build = _ROW_BUILDERS[key]
    if build is None:  # columns that are not fields: peewee's own way
        rows = list(peewee.ModelObjectCursorWrapper(cursor, model, [], model))
        return rows if limit is None else rows[:limit]
    made: list[M] = build(cursor.fetchall() if limit is None else cursor.fetchmany(limit))
    return made
