// The task list: one numbered page of tasks (taskPage) with the project's counters. The list's
// state is one object read from and written to the URL (#/tasks?page=2&size=20&order=ID_DESC),
// so filters can be added to it later as more keys. Live: the page is read again (debounced)
// when tasks are created, changed, labeled or deleted, and after a reconnection.
import { h, notice } from "../dom.js";
import { gql } from "../graphql.js";
import { debounce } from "../live.js";
import { TASK_PAGE } from "../operations.js";

const REFRESH_AFTER_MS = 300;

const ORDERS = ["ID_ASC", "ID_DESC", "COMPLETED_AT_ASC", "COMPLETED_AT_DESC"];
const SIZES = [10, 30, 50, 100];

export function listState(params) {
  const page = Math.max(1, Number.parseInt(params.get("page") ?? "1", 10) || 1);
  const size = Number.parseInt(params.get("size") ?? "30", 10);
  const order = params.get("order") ?? "ID_ASC";
  return {
    page,
    pageSize: SIZES.includes(size) ? size : 30,
    orderBy: ORDERS.includes(order) ? order : "ID_ASC",
  };
}

function listHref(state) {
  return `#/tasks?page=${state.page}&size=${state.pageSize}&order=${state.orderBy}`;
}

function preview(data) {
  const text = JSON.stringify(data);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

export async function tasksView(app, root, params) {
  const state = listState(params);
  const refresh = () => renderPage(app, root, state).catch((error) => console.warn(`labelgraph: ${error.message}`));
  app.onLive({ taskChanged: debounce(refresh, REFRESH_AFTER_MS), resync: refresh });
  await renderPage(app, root, state);
}

/** Read the page of `state` and show it in `root` (in place of what it showed). */
async function renderPage(app, root, state) {
  const { project } = await gql(TASK_PAGE, state);
  if (!app.isCurrent(root)) return;
  app.showCounters(project);
  const { total, tasks } = project.taskPage;
  const pages = Math.max(1, Math.ceil(total / state.pageSize));
  const rows = tasks.map((task) =>
    h(
      "tr",
      { "data-task-id": task.id },
      h("td", {}, h("a", { href: `#/tasks/${task.id}`, text: `#${task.id}` })),
      h("td.lg-data", { text: preview(task.data) }),
      h("td", { text: task.totalCompletions }),
      h("td", { text: task.cancelledCompletions }),
      h("td", { text: task.totalPredictions }),
      h("td", { text: task.completedAt ? new Date(task.completedAt).toLocaleString() : "" }),
    ),
  );
  const order = h(
    "select",
    { "aria-label": "order", onChange: (e) => go({ ...state, page: 1, orderBy: e.target.value }) },
    ORDERS.map((o) => h("option", { value: o, selected: o === state.orderBy, text: o.toLowerCase().replaceAll("_", " ") })),
  );
  const go = (next) => {
    location.hash = listHref(next);
  };
  root.replaceChildren(
    h("h2", { text: "Tasks" }),
    h(
      "div.lg-pager",
      {},
      h("button", { disabled: state.page <= 1, onClick: () => go({ ...state, page: state.page - 1 }), text: "‹ Previous" }),
      h("span", { "data-testid": "page-of", text: `Page ${state.page} of ${pages} (${total} tasks)` }),
      h("button", { disabled: state.page >= pages, onClick: () => go({ ...state, page: state.page + 1 }), text: "Next ›" }),
      order,
    ),
    tasks.length
      ? h(
          "table.lg-tasks",
          {},
          h("thead", {}, h("tr", {}, ["Task", "Data", "Completions", "Cancelled", "Predictions", "Completed at"].map((t) => h("th", { text: t })))),
          h("tbody", {}, rows),
        )
      : notice("No tasks on this page: import some.", "info", "no-tasks"),
  );
}
