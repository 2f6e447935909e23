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
