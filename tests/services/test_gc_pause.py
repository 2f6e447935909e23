import gc
import weakref

from starlette.testclient import TestClient

from server.app import create_app
from server.gc_pause import paused_gc, startup_objects_frozen
from server.settings import Settings


def test_pauses_nest_and_restore() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_leaves_a_disabled_collector_alone() -> None:
    gc.disable()
    try:
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


class Node:
    """An object that can sit in a reference cycle and be watched by a weak reference."""

    def __init__(self) -> None:
        self.other: object = self


def _cycle() -> weakref.ref[Node]:
    return weakref.ref(Node())  # unreachable at once, but only the collector frees it


def test_startup_objects_are_frozen_and_later_garbage_still_collected() -> None:
    assert gc.get_freeze_count() == 0
    before = _cycle()  # garbage at start-up: frozen with the rest
    with startup_objects_frozen():
        assert gc.get_freeze_count() > 0
        after = _cycle()
        gc.collect()
        assert after() is None  # made while frozen: collected as before
        assert before() is not None  # frozen: full collections skip it
        with startup_objects_frozen():  # nested (two apps in one process)
            pass
        assert gc.get_freeze_count() > 0  # the outer block still runs
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert before() is None  # handed back at the end, then collected


def test_a_running_app_keeps_its_startup_objects_frozen(settings: Settings) -> None:
    app = create_app(settings)
    assert gc.get_freeze_count() == 0
    with TestClient(app) as client:
        assert gc.get_freeze_count() > 0
        assert client.get("/api/health").status_code == 200
    assert gc.get_freeze_count() == 0
