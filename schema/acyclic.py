"""graphql-core's resolver helpers without the executor's reference cycle.

graphql-core's executor hands resolvers ``info.async_helpers``, made of its own bound methods:
executor -> helpers -> bound method -> executor. That cycle keeps every operation's execution
state, context and Starlette request alive until the cyclic garbage collector finds them
(~70-260 objects per request for it to walk and free). Helpers that reach the executor through
a weak reference break it: the executor goes by reference counting as soon as the operation
returns. The helpers are only called while the operation runs, when the executor is alive.
"""

from __future__ import annotations

import weakref
from typing import Any

from graphql import GraphQLResolveInfoHelpers
from graphql.execution.executor import Executor


def weak_async_helpers(executor: Executor[Any]) -> GraphQLResolveInfoHelpers:
    """``executor``'s ``async_helpers``, holding it weakly."""
    ref = weakref.ref(executor)

    def gather(values: Any) -> Any:
        alive = ref()
        assert alive is not None, "async helpers used after the operation ended"
        return alive.gather_async_work(values)

    def track(values: Any) -> None:
        alive = ref()
        assert alive is not None, "async helpers used after the operation ended"
        alive.track_async_work(values)

    return GraphQLResolveInfoHelpers(gather=gather, track=track)
