// The label stream: the project's next task (nextTask) in the editor; submit or skip stores a
// completion and brings the next one; "all done" when none is left.
//
// Live (taskChanged): when someone else labels (or skips, or deletes) the task on screen, one
// line says so and the stream moves on at once; if the user has unsaved work on it, the line
// offers "Next task" / "Keep labeling" instead (a completion on a labeled task is still
// stored). The page's own submission is told apart by the task it is storing. "All done"
// looks again when tasks are added or put back in the queue.
import { completionBody } from "../editor.js";
import { h, notice } from "../dom.js";
import { gql } from "../graphql.js";
import { debounce } from "../live.js";
import { NEXT_TASK, SUBMIT_AND_NEXT, TASK_STATE } from "../operations.js";

export const SUBMIT_MARK = "labelgraph:submit";
export const NEXT_SHOWN_MEASURE = "labelgraph:submit-to-next-task";
export const TASK_SHOWN_MARK = "labelgraph:task-shown";

export async function labelView(app, root) {
  const status = h("div.lg-status");
  const liveLine = h("div.lg-live-line");
  const heading = h("div.lg-taskbar", {}, h("span", { "data-testid": "task-id" }));
  root.append(heading, liveLine, status, app.editor.element);

  let shownId = null; // the task in the editor (null: all done)
  let storingId = null; // the task this page is storing a completion for
  let takenId = null; // the shown task, once someone else took it
  let generation = 0; // the latest request for a task to show; older answers are dropped

  /** Show the project's next task (from nextTask), or "all done". */
  const show = async (project) => {
    app.showCounters(project);
    if (!app.isCurrent(root)) return;
    const task = project.nextTask;
    shownId = task ? task.id : null;
    takenId = null;
    if (!task) {
      app.editor.element.hidden = true;
      heading.hidden = true;
      status.replaceChildren(
        h(
          "div.lg-all-done",
          { "data-testid": "all-done" },
          h("h2", { text: "All done" }),
          h("p", {}, "Every task of this project has a completion. ",
            h("a", { href: "#/tasks", text: "See the tasks" }), " or ",
            h("a", { href: "#/import", text: "import more" }), "."),
        ),
      );
      return;
    }
    status.replaceChildren();
    app.editor.element.hidden = false;
    heading.hidden = false;
    await app.editor.load(app.project.labelConfig, task.lsSourceJson);
    heading.firstChild.textContent = `Task #${task.id}`;
    heading.firstChild.dataset.taskId = String(task.id);
    performance.mark(TASK_SHOWN_MARK, { detail: task.id });
  };

  /** Ask for the next task and show it, unless something newer was asked meanwhile. */
  const next = async () => {
    const mine = ++generation;
    const { project } = await gql(NEXT_TASK);
    if (mine === generation) await show(project);
  };

  /** One line about the live queue; `actions` are [label, testId, onClick] buttons. */
  const announce = (text, kind = "info", actions = []) => {
    const buttons = actions.map(([label, testId, onClick]) =>
      h("button", { type: "button", text: label, "data-testid": testId, onClick }),
    );
    liveLine.replaceChildren(
      h(`div.lg-notice.lg-${kind}`, { "data-testid": "task-taken", role: "status" }, `${text} `, ...buttons),
    );
  };

  /** Someone else labeled (`how` = "labeled") or deleted the task on screen. */
  const taken = (taskId, how) => {
    if (taskId !== shownId || taskId === takenId || taskId === storingId || !app.isCurrent(root)) return;
    takenId = taskId;
    const line = `Task #${taskId} was just ${how} by someone else.`;
    const moveOn = () => next().catch((error) => status.replaceChildren(notice(error.message, "error")));
    if (!app.editor.hasUnsavedWork()) {
      announce(`${line} Here is the next one.`);
      moveOn();
    } else if (how === "deleted") {
      announce(`${line} Your unsaved work on it cannot be stored.`, "warning", [
        ["Next task", "next-task", () => { liveLine.replaceChildren(); moveOn(); }],
      ]);
    } else {
      announce(`${line} Your work on it is not saved yet.`, "warning", [
        ["Next task", "next-task", () => { liveLine.replaceChildren(); moveOn(); }],
        ["Keep labeling", "keep-labeling", () => liveLine.replaceChildren()],
      ]);
    }
  };

  /** After missed events: is the task on screen still to be labeled? */
  const recheck = async () => {
    if (shownId === null) return next();
    const id = shownId;
    try {
      const { task } = await gql(TASK_STATE, { id });
      if (task.isLabeled) taken(id, "labeled");
    } catch (error) {
      if (error.code === "NOT_FOUND") taken(id, "deleted");
      else throw error;
    }
  };

  const lookAgain = debounce(() => {
    if (shownId === null && app.isCurrent(root)) next().catch(() => {});
  }, 250);

  app.onLive({
    taskChanged: (change) => {
      if (shownId === null) {
        lookAgain(); // tasks added, or put back into the queue
      } else if (change.kind === "LABELED" || change.kind === "DELETED") {
        const how = change.kind === "LABELED" ? "labeled" : "deleted";
        if (change.taskIds.includes(shownId)) taken(shownId, how);
        else if (change.count > change.taskIds.length) recheck(); // a bulk change names only some
      }
    },
    resync: recheck,
  });

  /** Store the completion and show the next task: one GraphQL round trip (the mutation
   * answers the next task). The time from the click to the next task on screen is recorded
   * with the Performance API (bench/app_load.py reads it). */
  const store = async (ls, body, wasCancelled) => {
    performance.mark(SUBMIT_MARK);
    app.editor.setLoading(true);
    liveLine.replaceChildren();
    const taskId = Number(ls.task.id);
    storingId = taskId;
    const mine = ++generation;
    try {
      const { createCompletion } = await gql(SUBMIT_AND_NEXT, { taskId, completion: body, wasCancelled });
      performance.mark("labelgraph:stored");
      if (mine === generation) await show(createCompletion.project);
      await nextFrame();
      performance.measure(NEXT_SHOWN_MEASURE, SUBMIT_MARK);
    } catch (error) {
      app.editor.setLoading(false);
      status.replaceChildren(notice(`Could not save: ${error.message}`, "error"));
    } finally {
      if (storingId === taskId) storingId = null;
    }
  };

  app.editor.setHandlers({
    submit: (ls, completion) => {
      store(ls, completionBody(completion), null);
      return true;
    },
    skip: (ls) => {
      const selected = ls.completionStore.selected;
      store(ls, selected ? completionBody(selected) : { result: [] }, true);
      return true;
    },
  });
  await next();
}

/** Resolve when the browser is about to paint what is on screen now. */
function nextFrame() {
  return new Promise((resolve) => requestAnimationFrame(() => resolve()));
}
