"""The subscription executor's per-event copy (schema/shared_events.py)."""

from __future__ import annotations

import copy

from graphql import parse

from schema import schema
from schema.shared_events import SharedEventExecution


def test_the_per_event_executor_is_graphql_cores_copy_with_its_own_root_and_errors() -> None:
    document = parse("subscription { completionChanged { completionIds } }")
    executor = SharedEventExecution.build(schema._schema, document)
    assert isinstance(executor, SharedEventExecution)
    reference = copy.copy(executor)
    first = executor.build_per_event_executor("first event")
    second = executor.build_per_event_executor("second event")
    assert type(first) is SharedEventExecution
    assert set(vars(first)) == set(vars(reference))
    assert (first.root_value, second.root_value) == ("first event", "second event")
    assert first.collected_errors is not second.collected_errors
    assert first.collected_errors is not executor.collected_errors
    # Its resolver helpers are its own, reaching it weakly (schema/acyclic.py): no cycle.
    assert first.async_helpers is not executor.async_helpers
    assert first.async_helpers is not second.async_helpers
    shared = set(vars(reference)) - {"root_value", "collected_errors", "async_helpers"}
    assert all(getattr(first, name) is getattr(executor, name) for name in shared)
