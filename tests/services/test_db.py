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

    from server.db import FairLock

    lock = FairLock()
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
