// Import: task files uploaded through the GraphQL multipart request spec (importTasks), or
// tasks pasted as JSON.
import { h, notice } from "../dom.js";
import { gql } from "../graphql.js";
import { IMPORT_FILES, IMPORT_TASKS } from "../operations.js";

function report(result) {
  const r = result.importTasks;
  return notice(
    `Imported ${r.taskCount} tasks (${r.completionCount} completions, ${r.predictionCount} predictions) in ${r.duration.toFixed(2)} s.`,
    "info",
    "import-report",
  );
}

export function importView(app, root) {
  const status = h("div.lg-status");
  const input = h("input", { type: "file", multiple: true, "aria-label": "task files" });
  const text = h("textarea", { rows: 6, "aria-label": "tasks as JSON", placeholder: '[{"text": "first task"}, {"text": "second"}]' });
  const run = async (operation, variables, files) => {
    status.replaceChildren(notice("Importing...", "info"));
    try {
      const result = await gql(operation, variables, { files });
      status.replaceChildren(report(result));
      app.refreshCounters();
    } catch (error) {
      const details = (error.errors?.[0]?.extensions?.errors ?? []).join(" ");
      status.replaceChildren(notice(`Import refused: ${error.message} ${details}`, "error", "import-error"));
    }
  };
  root.append(
    h("h2", { text: "Import tasks" }),
    h("p", {}, "JSON, CSV, TSV, TXT, HTML, ZIP or media files, read as Label Studio 0.9 reads them."),
    h("form.lg-form", { onSubmit: (e) => { e.preventDefault(); if (input.files.length) run(IMPORT_FILES, {}, Array.from(input.files)); } },
      input, h("button", { type: "submit", text: "Upload" })),
    h("p", { text: "Or paste tasks as JSON:" }),
    h("form.lg-form", { onSubmit: (e) => {
      e.preventDefault();
      let tasks;
      try { tasks = JSON.parse(text.value); } catch (err) { status.replaceChildren(notice(`Not JSON: ${err.message}`, "error", "import-error")); return; }
      run(IMPORT_TASKS, { tasks });
    } }, text, h("button", { type: "submit", text: "Import" })),
    status,
  );
}
