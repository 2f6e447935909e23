// One task with its completions: update or delete a completion, add another one.
import { completionBody } from "../editor.js";
import { h, notice } from "../dom.js";
import { gql } from "../graphql.js";
import { CREATE_COMPLETION, DELETE_COMPLETION, TASK, UPDATE_COMPLETION } from "../operations.js";

export async function taskView(app, root, id) {
  const status = h("div.lg-status");
  const bar = h("div.lg-taskbar", {}, h("span", { "data-testid": "task-id", "data-task-id": id, text: `Task #${id}` }), " ", h("a", { href: "#/tasks", text: "back to the list" }));
  root.append(bar, status, app.editor.element);
  app.editor.element.hidden = false;

  const show = async () => {
    const { task } = await gql(TASK, { id });
    if (!app.isCurrent(root)) return;
    await app.editor.load(app.project.labelConfig, task.lsJson);
  };
  const run = async (what, operation, variables) => {
    app.editor.setLoading(true);
    try {
      await gql(operation, variables);
      status.replaceChildren(notice(what, "info", "saved"));
      await show();
      app.refreshCounters();
    } catch (error) {
      app.editor.setLoading(false);
      status.replaceChildren(notice(`Could not save: ${error.message}`, "error"));
    }
  };
  app.editor.setHandlers({
    submit: (ls, c) => {
      run("Completion saved.", CREATE_COMPLETION, { taskId: id, completion: completionBody(c) });
      return true;
    },
    update: (ls, c) => {
      run("Completion updated.", UPDATE_COMPLETION, { id: Number(c.pk), completion: completionBody(c) });
    },
    remove: (ls, c) => {
      if (c.pk) run("Completion deleted.", DELETE_COMPLETION, { id: Number(c.pk) });
    },
    skip: (ls) => {
      const c = ls.completionStore.selected;
      run("Task skipped (a cancelled completion).", CREATE_COMPLETION, {
        taskId: id,
        completion: c ? completionBody(c) : { result: [] },
        wasCancelled: true,
      });
      return true;
    },
  });
  try {
    await show();
  } catch (error) {
    app.editor.element.hidden = true;
    status.replaceChildren(notice(error.message, "error", "task-error"));
  }
}
