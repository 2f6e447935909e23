import pytest

from server.db import make_database


def test_postgres_urls_are_decoded() -> None:
    db = make_database("postgresql://me:p%40ss@%2Fvar%2Frun%2Fpostgresql/my%20db?sslmode=disable")
    assert db.database == "my db"
    assert db.connect_params["host"] == "/var/run/postgresql"
    assert db.connect_params["password"] == "p@ss"
    assert db.connect_params["sslmode"] == "disable"
    db = make_database("postgresql://me@DB.Example:5433/x")
    assert db.connect_params["host"] == "DB.Example" and db.connect_params["port"] == 5433


def test_sqlite_paths() -> None:
    assert make_database("sqlite:///rel/x.db").database == "rel/x.db"
    assert make_database("sqlite:////abs/x.db").database == "/abs/x.db"


def test_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="unsupported database URL"):
        make_database("mysql://x/y")


def test_the_writer_lock_is_handed_over_in_arrival_order() -> None:
    import threading
    import time

    from server.db import FairSemaphore

    lock = FairSemaphore(1)
    assert lock.acquire(timeout=1)
    order: list[str] = []

    def wait(name: str) -> None:
        assert lock.acquire(timeout=10)
        order.append(name)
        lock.release()

    threads = []
    for name in ("first", "second", "third"):
        thread = threading.Thread(target=wait, args=(name,))
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 5
        while len(lock._waiters) < len(threads):  # queued before the next one starts
            assert time.monotonic() < deadline
            time.sleep(0.001)
    assert lock.acquire(timeout=0.01) is False  # a timed-out wait leaves no waiter behind
    assert len(lock._waiters) == 3
    lock.release()
    for thread in threads:
        thread.join(5)
    assert order == ["first", "second", "third"]
    assert not lock.locked()


def test_the_semaphore_lets_its_permits_through_and_queues_the_rest() -> None:
    import threading

    from server.db import FairSemaphore

    slots = FairSemaphore(2)
    assert slots.try_acquire() and slots.acquire(timeout=0)
    assert not slots.try_acquire() and slots.locked()
    assert slots.acquire(timeout=0.01) is False
    taken = threading.Event()

    def wait() -> None:
        assert slots.acquire(timeout=10)
        taken.set()

    thread = threading.Thread(target=wait)
    thread.start()
    assert not taken.wait(0.05)  # both permits are held
    slots.release()  # handed to the waiter, not freed
    assert taken.wait(5)
    thread.join(5)
    assert not slots.try_acquire()
    slots.release()
    slots.release()
    assert slots.try_acquire() and slots.try_acquire() and not slots.try_acquire()


def test_json_columns_read_as_json_loads_reads_them() -> None:
    """server.models.load_json takes orjson's faster path only where it reads the same value."""
    import json
    import math

    from server.models import load_json

    texts = [
        '{"b":1,"a":[1.5,-0.0,1e5,null,true,"\\u00e9"]}',
        "[123456789012345678]",  # 18 digits: within 64 bits
        "[12345678901234567890123]",  # beyond 64 bits: orjson would make a float of it
        "[0.12345678901234567890123]",
        '["\\ud800"]',  # a lone surrogate orjson refuses
        "[NaN, Infinity]",  # json's extensions
        "[1e400]",
    ]
    for text in texts:
        got, expected = load_json(text), json.loads(text)
        assert repr(got) == repr(expected), text
    assert load_json("[12345678901234567890123]") == [12345678901234567890123]
    assert math.isnan(load_json("[NaN]")[0])
    with pytest.raises(ValueError):
        load_json("{bad")


def test_rows_keep_only_values_their_plain_field_would_keep() -> None:
    """model_rows skips the conversion of values already of their field's type, only for
    fields whose conversion leaves those as they are: a TimestampField (an integer column
    read as a datetime) converts every value."""
    import peewee

    from server.db import _native_type
    from server.models import Completion, Task

    assert _native_type(Task.id) is int and _native_type(Task.project) is int
    assert _native_type(Task.is_labeled) is bool and _native_type(Task.data) is None
    assert _native_type(Task.predictions_score) is float
    assert _native_type(Completion.was_cancelled) is bool
    assert _native_type(peewee.TextField()) is str
    assert _native_type(peewee.TimestampField()) is None
    assert _native_type(peewee.DateTimeField()) is None
