"""The database proxy forwards its hot names as properties, with peewee's proxy semantics."""

import peewee
import pytest

from server import db
from server.db_proxy import FORWARDED, DatabaseProxy


def test_every_forwarded_name_is_an_attribute_of_a_peewee_database() -> None:
    target = peewee.SqliteDatabase(":memory:")
    missing = [name for name in FORWARDED if not hasattr(target, name)]
    assert missing == []


def test_the_server_database_is_the_forwarding_proxy() -> None:
    assert isinstance(db.database, DatabaseProxy)


def test_an_uninitialized_proxy_refuses_forwarded_names_as_peewee_does() -> None:
    proxy = DatabaseProxy()
    for name in FORWARDED:
        with pytest.raises(AttributeError, match="Cannot use uninitialized Proxy"):
            getattr(proxy, name)
    with pytest.raises(AttributeError, match="Cannot use uninitialized Proxy"):
        proxy.get_tables  # noqa: B018  (a name that is not forwarded: peewee's own path)


def test_forwarded_names_reach_the_bound_database_without_getattr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    looked_up: list[str] = []
    forward = peewee.Proxy.__getattr__

    def counting(self: peewee.Proxy, attr: str) -> object:
        looked_up.append(attr)
        return forward(self, attr)

    monkeypatch.setattr(peewee.Proxy, "__getattr__", counting)
    proxy = DatabaseProxy()
    target = peewee.SqliteDatabase(":memory:")
    proxy.initialize(target)
    for name in FORWARDED:
        assert getattr(proxy, name) == getattr(target, name)
    assert looked_up == []
    with proxy.connection_context():
        with proxy.atomic():
            proxy.execute_sql("CREATE TABLE t (x INTEGER)")
            proxy.execute_sql("INSERT INTO t VALUES (?)", (7,))
        assert proxy.in_transaction() is False
        assert proxy.execute_sql("SELECT x FROM t").fetchall() == [(7,)]
        assert proxy.get_tables() == ["t"]  # not forwarded: through __getattr__
    assert proxy.is_closed()
    assert looked_up == ["get_tables"]
    proxy.initialize(peewee.SqliteDatabase(":memory:"))  # rebinding reaches the new one
    assert proxy.param == "?" and proxy.obj is not target


def test_the_proxy_still_refuses_attributes_of_its_own() -> None:
    proxy = DatabaseProxy()
    with pytest.raises(AttributeError, match="Cannot set attribute on proxy"):
        proxy.anything = 1
    proxy.initialize(peewee.SqliteDatabase(":memory:"))
    with pytest.raises(AttributeError, match="Cannot set attribute on proxy"):
        proxy.execute_sql = None
