"""The REST routes as one router entry that finds a request's route without trying each.

Starlette's router tries its routes one by one (a function call and a regular expression
each); the REST facade has two routes per path (with and without the trailing slash), so a
request for ``/api/tasks/<id>`` tried some sixty before its own. :class:`RouteTable` holds the
same :class:`~starlette.routing.Route` objects, in the same order, and answers exactly as the
router would have: it looks paths without parameters up in a dict and tries only the routes
with parameters registered before that one (a handful), then lets the chosen route match and
handle the request as before (methods, HEAD, 405 and path parameters unchanged).
"""

from __future__ import annotations

import itertools
from typing import Any

from starlette._utils import get_route_path
from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import Receive, Scope, Send

_ROUTE = "labelgraph.route"


class RouteTable(BaseRoute):
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self._static: dict[str, int] = {}
        # Routes with parameters, grouped by the literal text before their first parameter: a
        # path not starting with it cannot match (one string test per group, a handful, instead
        # of one per route).
        self._with_params: dict[str, list[tuple[int, Route]]] = {}
        for index, route in enumerate(routes):
            if route.param_convertors:
                prefix = route.path.split("{", 1)[0]
                self._with_params.setdefault(prefix, []).append((index, route))
            else:
                self._static.setdefault(route.path, index)

    def _candidates(self, path: str) -> list[Route]:
        """The routes that may match ``path``, in registration order."""
        static = self._static.get(path)
        groups = [group for prefix, group in self._with_params.items() if path.startswith(prefix)]
        with_params = groups[0] if len(groups) == 1 else sorted(itertools.chain(*groups))
        found = [
            route
            for index, route in with_params
            if (static is None or index < static) and route.path_regex.match(path)
        ]
        if static is not None:
            found.append(self.routes[static])
        return found

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        partial: tuple[Match, Scope] | None = None
        for route in self._candidates(get_route_path(scope)):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return match, {**child_scope, _ROUTE: route}
            if match is Match.PARTIAL and partial is None:
                partial = (match, {**child_scope, _ROUTE: route})
        return partial if partial is not None else (Match.NONE, {})

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: Route = scope[_ROUTE]
        await route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                pass
        raise NoMatchFound(name, path_params)
