"""Label Studio 0.9.1's data-manager routes (rest-api.md Appendix A): columns, tabs, selected
items, a tab's tasks and completions, and actions, each over a stored GraphQL operation.

Label Studio answers bad input here with 500 envelopes; these answer 4xx (compat-decisions'
general rules): an unknown tab is 404, a malformed body or selection 400, a bad filter 400.
Tab 1 exists implicitly (Label Studio's default tab) until tabs are saved.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from rest_compat._http import (
    Operation,
    OperationFailed,
    RestError,
    answer,
    bad_request,
    endpoint,
    error_body,
    execute,
    path_id,
    query_paging,
    read_json,
)
from rest_compat.tasks import task_page_body
from server.principal import Role

COLUMNS = Operation("query RestDmColumns { project { dataManagerColumns } }")
TABS = Operation("query RestDmTabs { project { views { id lsJson } } }")
TABS_DELETE = Operation("mutation RestDmTabsDelete { deleteAllViews }")
TAB_SAVE = Operation(
    "mutation RestDmTabSave($id: Int!, $view: TaskViewInput!) {"
    " saveView(id: $id, view: $view) { lsJson } }"
)
TAB_DELETE = Operation("mutation RestDmTabDelete($id: Int!) { deleteView(id: $id) }")
SELECTION = Operation(
    "mutation RestDmSelection($id: Int!, $selection: JSON!, $change: SelectionChange!) {"
    " updateViewSelection(id: $id, selection: $selection, change: $change) { lsJson } }"
)
TAB_TASKS = Operation(
    "query RestDmTabTasks($view: ID, $page: Int!, $pageSize: Int!) { project {"
    " taskPage(view: $view, page: $page, pageSize: $pageSize) {"
    " lsJson total totalCompletions totalPredictions } } }"
)
TAB_COMPLETIONS = Operation(
    "query RestDmTabCompletions($view: ID, $page: Int!, $pageSize: Int!) { project {"
    " viewCompletions(view: $view, page: $page, pageSize: $pageSize) } }"
)
ACTIONS = Operation("query RestDmActions { dataManagerActions }")
RUN_ACTION = Operation(
    "mutation RestDmAction($action: TaskAction!, $selection: JSON, $view: ID) {"
    " runTaskAction(action: $action, selection: $selection, view: $view) {"
    " processedItems taskCount detail } }"
)

DEFAULT_TAB: dict[str, Any] = {"id": 1, "title": "Tab 1", "hiddenColumns": None}
ACTION_IDS = {
    "delete_tasks": "DELETE_TASKS",
    "delete_tasks_completions": "DELETE_TASKS_COMPLETIONS",
    "delete_tasks_predictions": "DELETE_TASKS_PREDICTIONS",
    "retrieve_tasks_predictions": "PREDICT",
}
# Label Studio's tab keys -> TaskViewInput fields; any other key is kept in ``extra``.
TAB_KEYS = {
    "title": "title",
    "filters": "filters",
    "ordering": "ordering",
    "hiddenColumns": "hiddenColumns",
    "selectedItems": "selection",
}


async def _tabs(request: Request) -> list[dict[str, Any]]:
    data = await execute(request, TABS)
    return [view["lsJson"] for view in data["project"]["views"]]


@endpoint("/project/columns", "GET", COLUMNS, permission=Role.ANNOTATOR)
async def columns_get(request: Request) -> Response:
    data = await execute(request, COLUMNS)
    return answer(data["project"]["dataManagerColumns"], 200, COLUMNS)


@endpoint("/project/tabs", "GET", TABS, permission=Role.ANNOTATOR)
async def tabs_get(request: Request) -> Response:
    return answer({"tabs": await _tabs(request) or [DEFAULT_TAB]}, 200, TABS)


@endpoint("/project/tabs", "DELETE", TABS_DELETE, permission=Role.ADMIN)
async def tabs_delete(request: Request) -> Response:
    await execute(request, TABS_DELETE)
    return answer(None, 204, TABS_DELETE)


@endpoint("/project/tabs/{tab_id}", "GET", TABS, permission=Role.ANNOTATOR)
async def tab_get(request: Request) -> Response:
    tab_id = path_id(request, "tab_id", "Tab")
    tabs = await _tabs(request)
    for tab in tabs or [DEFAULT_TAB]:
        if tab["id"] == tab_id:
            return answer(tab, 200, TABS)
    raise RestError(404, error_body(404, f"No tab with id: {tab_id}"), TABS)


def _view_input(body: dict[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = {}
    extra = {k: v for k, v in body.items() if k not in TAB_KEYS and k != "id"}
    for key, field in TAB_KEYS.items():
        if key in body:
            view[field] = body[key]
    if "title" in view and not isinstance(view["title"], str):
        raise bad_request("title must be a string")
    if extra:
        view["extra"] = extra
    return view


@endpoint("/project/tabs/{tab_id}", "POST", TAB_SAVE, permission=Role.ADMIN)
async def tab_post(request: Request) -> Response:
    tab_id = path_id(request, "tab_id", "Tab")
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("The tab must be a JSON object")
    data = await execute(request, TAB_SAVE, {"id": tab_id, "view": _view_input(body)})
    return answer(data["saveView"]["lsJson"], 200, TAB_SAVE)


@endpoint("/project/tabs/{tab_id}", "DELETE", TAB_DELETE, permission=Role.ADMIN)
async def tab_delete(request: Request) -> Response:
    tab_id = path_id(request, "tab_id", "Tab")
    try:
        await execute(request, TAB_DELETE, {"id": tab_id})
    except OperationFailed as exc:  # Label Studio answers 204 for an unknown tab too
        if exc.code != "NOT_FOUND":
            raise
    return answer(None, 204, TAB_DELETE)


@endpoint("/project/tabs/{tab_id}/selected-items", "GET", TABS, permission=Role.ANNOTATOR)
async def selected_get(request: Request) -> Response:
    tab_id = path_id(request, "tab_id", "Tab")
    for tab in await _tabs(request) or [{**DEFAULT_TAB, "selectedItems": None}]:
        if tab["id"] == tab_id:
            return answer(tab.get("selectedItems"), 200, TABS)
    raise RestError(404, error_body(404, f"No tab with id: {tab_id}"), TABS)


def _selection_body(body: Any) -> dict[str, Any]:
    if not (
        isinstance(body, dict)
        and isinstance(body.get("all"), bool)
        and ("excluded" if body["all"] else "included") in body
    ):
        raise bad_request(
            'JSON body must be dict: {"all": true, "excluded": [..task_ids..]} or '
            '{"all": false, "included": [..task_ids..]}'
        )
    return body


async def _change_selection(request: Request, change: str, status: int) -> Response:
    tab_id = path_id(request, "tab_id", "Tab")
    selection = _selection_body(await read_json(request))
    variables = {"id": tab_id, "selection": selection, "change": change}
    data = await execute(request, SELECTION, variables)
    return answer(
        data["updateViewSelection"]["lsJson"] if status != 204 else None, status, SELECTION
    )


@endpoint("/project/tabs/{tab_id}/selected-items", "POST", SELECTION, permission=Role.ADMIN)
async def selected_post(request: Request) -> Response:
    return await _change_selection(request, "SET", 201)


@endpoint("/project/tabs/{tab_id}/selected-items", "PATCH", SELECTION, permission=Role.ADMIN)
async def selected_patch(request: Request) -> Response:
    return await _change_selection(request, "UNION", 201)


@endpoint("/project/tabs/{tab_id}/selected-items", "DELETE", SELECTION, permission=Role.ADMIN)
async def selected_delete(request: Request) -> Response:
    return await _change_selection(request, "DIFFERENCE", 204)


async def _on_tab(
    request: Request, operation: Operation, variables: dict[str, Any], tab_id: int
) -> dict[str, Any]:
    """Run an operation on a tab; the implicit default tab 1 is the whole project."""
    try:
        return await execute(request, operation, {**variables, "view": str(tab_id)})
    except OperationFailed as exc:
        if exc.code != "NOT_FOUND" or tab_id != 1 or await _tabs(request):
            raise
    return await execute(request, operation, {**variables, "view": None})


@endpoint("/project/tabs/{tab_id}/tasks", "GET", TAB_TASKS, permission=Role.ANNOTATOR)
async def tab_tasks(request: Request) -> Response:
    tab_id = path_id(request, "tab_id", "Tab")
    page, page_size = query_paging(request, TAB_TASKS)
    data = await _on_tab(request, TAB_TASKS, {"page": page, "pageSize": page_size}, tab_id)
    return answer(task_page_body(data["project"]["taskPage"]), 200, TAB_TASKS)


@endpoint("/project/tabs/{tab_id}/annotations", "GET", TAB_COMPLETIONS, permission=Role.ANNOTATOR)
async def tab_annotations(request: Request) -> Response:
    tab_id = path_id(request, "tab_id", "Tab")
    page, page_size = query_paging(request, TAB_COMPLETIONS)
    variables = {"page": page, "pageSize": page_size}
    data = await _on_tab(request, TAB_COMPLETIONS, variables, tab_id)
    return answer(data["project"]["viewCompletions"], 200, TAB_COMPLETIONS)


async def _perform(request: Request, tab_id: int | None) -> Response:
    body = await read_json(request) if request.method == "POST" else None
    selection: Any = None
    if isinstance(body, dict) and "selectedItems" in body:
        selection = body["selectedItems"]
        if not isinstance(selection, dict) or not selection:
            raise bad_request(
                'selectedItems must be dict: {"all": [true|false], '
                '"excluded | included": [...task_ids...]}'
            )
    if selection is None and tab_id is None:
        raise RestError(404, error_body(404, "no selected items on tab with id None"), RUN_ACTION)
    action_id = request.query_params.get("id")
    if action_id is None:
        detail = 'No action id "None", use ?id=<action-id>'
        raise RestError(422, error_body(422, detail), RUN_ACTION)
    if action_id not in ACTION_IDS:
        raise bad_request(f"Can't find {action_id!r} in registered actions")
    variables: dict[str, Any] = {"action": ACTION_IDS[action_id], "selection": selection}
    try:
        if tab_id is None:
            data = (await execute(request, RUN_ACTION, variables))["runTaskAction"]
        else:
            data = (await _on_tab(request, RUN_ACTION, variables, tab_id))["runTaskAction"]
    except OperationFailed as exc:
        if exc.code != "INVALID" or not exc.message.startswith("Give a selection"):
            raise
        detail = f"no selected items on tab with id {tab_id}"  # the default tab selects none
        raise RestError(404, error_body(404, detail), RUN_ACTION) from None
    if action_id in ("delete_tasks", "delete_tasks_completions"):  # Label Studio counts tasks
        noun = "tasks" if action_id == "delete_tasks" else "completions"
        count = data["taskCount"]
        body = {"processed_items": count, "detail": f"Deleted {count} {noun}"}
    else:
        body = {"processed_items": data["processedItems"], "detail": data["detail"]}
    return answer(body, 200, RUN_ACTION)


@endpoint("/project/actions", "GET", ACTIONS, permission=Role.ADMIN)
async def actions_get(request: Request) -> Response:
    if request.query_params.get("id"):
        return await _perform(request, None)
    data = await execute(request, ACTIONS)
    return answer(data["dataManagerActions"], 200, ACTIONS)


@endpoint("/project/actions", "POST", RUN_ACTION, permission=Role.ADMIN)
async def actions_post(request: Request) -> Response:
    return await _perform(request, None)


@endpoint("/project/tabs/{tab_id}/actions", "POST", RUN_ACTION, permission=Role.ADMIN)
async def tab_actions_post(request: Request) -> Response:
    return await _perform(request, path_id(request, "tab_id", "Tab"))
