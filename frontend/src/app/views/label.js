// The label stream: the project's next task (nextTask) in the editor; submit or skip stores a
// completion and brings the next one; "all done" when none is left.
import { completionBody } from "../editor.js";
import { h, notice } from "../dom.js";
import { gql } from "../graphql.js";
import { NEXT_TASK, SUBMIT_AND_NEXT } from "../operations.js";

export const SUBMIT_MARK = "labelgraph:submit";
export const NEXT_SHOWN_MEASURE = "labelgraph:submit-to-next-task";
export const TASK_SHOWN_MARK = "labelgraph:task-shown";

export async function labelView(app, root) {
  const status = h("div.lg-status");
  const heading = h("div.lg-taskbar", {}, h("span", { "data-testid": "task-id" }));
  root.append(heading, status, app.editor.element);

  /** Show the project's next task (from nextTask), or "all done". */
  const show = async (project) => {
    app.showCounters(project);
    if (!app.isCurrent(root)) return;
    const task = project.nextTask;
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

  /** Store the completion and show the next task: one GraphQL round trip (the mutation
   * answers the next task). The time from the click to the next task on screen is recorded
   * with the Performance API (bench/app_load.py reads it). */
  const store = async (ls, body, wasCancelled) => {
    performance.mark(SUBMIT_MARK);
    app.editor.setLoading(true);
    try {
      const variables = { taskId: Number(ls.task.id), completion: body, wasCancelled };
      const { createCompletion } = await gql(SUBMIT_AND_NEXT, variables);
      performance.mark("labelgraph:stored");
      await show(createCompletion.project);
      await nextFrame();
      performance.measure(NEXT_SHOWN_MEASURE, SUBMIT_MARK);
    } catch (error) {
      app.editor.setLoading(false);
      status.replaceChildren(notice(`Could not save: ${error.message}`, "error"));
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
  await show((await gql(NEXT_TASK)).project);
}

/** Resolve when the browser is about to paint what is on screen now. */
function nextFrame() {
  return new Promise((resolve) => requestAnimationFrame(() => resolve()));
}
