// labelgraph's labeling app: a shell (navigation, project counters) and a hash router over
// views. Each view gets a fresh root element; `app.isCurrent(root)` tells a view whose data
// arrived late that it was left meanwhile. Login, filters and live updates slot in as: a view
// plus a request hook (graphql.js), keys of the task list's state (views/tasks.js), and a
// subscription calling app.refreshCounters() / the current view.
import "./app.css";
import { h, notice } from "./dom.js";
import { Editor } from "./editor.js";
import { gql } from "./graphql.js";
import { debounce, Live } from "./live.js";
import { COUNTERS, PROJECT, PROJECT_CHANGED, TASK_CHANGED } from "./operations.js";
import { configView } from "./views/config.js";
import { importView } from "./views/import.js";
import { labelView } from "./views/label.js";
import { taskView } from "./views/task.js";
import { tasksView } from "./views/tasks.js";

const COUNTER_LABELS = [
  ["taskCount", "tasks"],
  ["labeledTaskCount", "labeled"],
  ["completionCount", "completions"],
  ["predictionCount", "predictions"],
];

const LIVE_STATES = {
  connecting: ["connecting…", "Connecting for live updates"],
  live: ["live", "Counters and the queue follow your colleagues' work as it happens"],
  offline: ["offline", "Live updates are interrupted; reconnecting (what is shown may be out of date)"],
};

class App {
  constructor(element) {
    this.editor = null; // made once the project's settings are known
    this.project = null;
    this.counters = h("span.lg-counters", { "data-testid": "counters" });
    this.liveStatus = h("span.lg-live", { "data-testid": "live-status" });
    this.banner = h("div.lg-banner");
    this.main = h("main.lg-main");
    this.current = null;
    this.live = null;
    this.liveHandlers = {};
    this.resync = debounce(() => this.catchUp(), 200);
    const link = (href, text) => h("a", { href, text, "data-nav": href });
    element.append(
      h(
        "header.lg-header",
        {},
        h("strong", { text: "labelgraph" }),
        h("span.lg-project"),
        h("nav", {}, link("#/", "Label"), link("#/tasks", "Tasks"), link("#/import", "Import"), link("#/config", "Config"), h("a", { href: "/graphql", text: "GraphiQL" })),
        this.counters,
        this.liveStatus,
      ),
      this.banner,
      this.main,
    );
  }

  async start() {
    this.project = (await gql(PROJECT)).project;
    this.editor = new Editor({ skip: this.project.showSkipButton });
    document.querySelector(".lg-project").textContent = this.project.title || this.project.name;
    this.showCounters(this.project);
    this.startLive();
    window.addEventListener("hashchange", () => this.route());
    await this.route();
  }

  /** One WebSocket for the page: the counters from projectChanged, task changes to the view. */
  startLive() {
    this.showLiveState("connecting");
    this.live = new Live({ onState: (state) => this.showLiveState(state), onResync: this.resync });
    this.live.subscribe("projectChanged", PROJECT_CHANGED, (change) => {
      this.showCounters(change);
      if (change.reason === "config") this.announceConfigChange();
    });
    this.live.subscribe("taskChanged", TASK_CHANGED, (change) => this.liveHandlers.taskChanged?.(change));
  }

  /** Handlers of the current view: taskChanged(change), resync() after missed events. */
  onLive(handlers) {
    this.liveHandlers = handlers;
  }

  /** Events may have been missed (reconnected): read the counters and the view anew. */
  async catchUp() {
    try {
      await this.refreshCounters();
      await this.liveHandlers.resync?.();
    } catch (error) {
      console.warn(`labelgraph: catching up failed: ${error.message}`);
    }
  }

  showLiveState(state) {
    const [text, title] = LIVE_STATES[state];
    this.liveStatus.dataset.state = state;
    this.liveStatus.title = title;
    this.liveStatus.textContent = text;
  }

  /** The editor is built from the config once per page load: offer to load the page anew. */
  announceConfigChange() {
    if (this.banner.childElementCount) return;
    this.banner.append(
      h(
        "div.lg-notice.lg-warning",
        { "data-testid": "config-changed", role: "status" },
        "The labeling config was changed. Reload to label with the new one. ",
        h("button", { type: "button", text: "Reload", onClick: () => location.reload() }),
      ),
    );
  }

  isCurrent(root) {
    return this.current === root;
  }

  showCounters(project) {
    this.counters.replaceChildren(
      ...COUNTER_LABELS.map(([key, label]) => h("span", { "data-counter": key }, h("b", { text: project[key] }), ` ${label}`)),
    );
  }

  async refreshCounters() {
    const { project } = await gql(COUNTERS);
    this.showCounters(project);
  }

  async route() {
    const [path, query = ""] = (location.hash.replace(/^#/, "") || "/").split("?");
    const params = new URLSearchParams(query);
    const root = h("section.lg-view");
    this.current = root;
    this.main.replaceChildren(root);
    for (const a of document.querySelectorAll("[data-nav]")) {
      a.classList.toggle("lg-active", a.dataset.nav === `#${path.startsWith("/tasks") ? "/tasks" : path}`);
    }
    this.editor?.setHandlers({});
    this.liveHandlers = {};
    try {
      const task = path.match(/^\/tasks\/(\d+)$/);
      if (task) await taskView(this, root, Number(task[1]));
      else if (path === "/tasks") await tasksView(this, root, params);
      else if (path === "/import") importView(this, root);
      else if (path === "/config") configView(this, root);
      else if (!this.project.labelConfig.includes("toName")) {
        root.append(notice("This project has no labeling config yet: set one under Config.", "info", "no-config"));
      } else await labelView(this, root);
    } catch (error) {
      root.append(notice(error.message, "error", "view-error"));
    }
  }
}

const element = document.getElementById("app");
const app = new App(element);
window.labelgraph = app; // for the browser tests and the console
app.start().catch((error) => element.append(notice(`labelgraph: ${error.message}`, "error", "app-error")));
