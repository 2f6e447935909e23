// One Label Studio editor (label-studio@0.9.1, global `LabelStudio`) for the app's lifetime:
// the editor binds global hotkeys, so a second instance would answer every key twice. Views
// borrow its element and set the callbacks they need; `load` swaps the task in place (as
// Label Studio 0.9.1's own front end did), which is much faster than a new editor.

const INTERFACES = [
  "basic",
  "panel", // undo, redo, reset
  "controls", // skip, submit, update buttons
  "submit",
  "update",
  "skip",
  "predictions",
  "predictions:menu",
  "completions:menu",
  "completions:add-new",
  "completions:delete",
  "side-column",
];

const noop = () => {};

/** A server task (Label Studio 0.9 JSON: id, data, completions, predictions) in the form the
 * editor takes: camelCase completion fields (the editor turns `data` into a string itself). */
export function editorTask(task) {
  const completions = (task.completions ?? []).map((c) => ({
    ...c,
    pk: String(c.id),
    createdAgo: c.created_ago,
    createdBy: c.created_username ?? "",
    leadTime: c.lead_time,
  }));
  const predictions = (task.predictions ?? []).map((p) => ({
    ...p,
    pk: p.id !== undefined ? String(p.id) : undefined,
    createdAgo: p.created_ago,
    createdBy: p.created_by ?? p.model_version ?? "",
  }));
  return { id: task.id, data: task.data, completions, predictions };
}

/** What the editor's current completion holds, as the API stores it. */
export function completionBody(completion) {
  const leadTime = completion.loadedDate ? (Date.now() - completion.loadedDate) / 1000 : null;
  return { result: completion.serializeCompletion(), lead_time: leadTime };
}

export class Editor {
  /** `skip`: whether to offer the Skip button (the project's showSkipButton). */
  constructor({ skip = true } = {}) {
    this.interfaces = skip ? INTERFACES : INTERFACES.filter((name) => name !== "skip");
    this.element = document.createElement("div");
    this.element.className = "lg-editor";
    this.ls = null;
    this.handlers = {};
    this.ready = null;
    this.loadedResult = "[]";
  }

  /** Callbacks: submit(ls, completion), update(ls, completion), remove(ls, completion),
   * skip(ls). */
  setHandlers(handlers) {
    this.handlers = handlers;
  }

  /** Show `task` (server JSON); the first call creates the editor with `config`. */
  async load(config, task) {
    if (!this.ready) this.ready = new Promise((resolve) => this.create(config, resolve));
    await this.ready;
    const converted = editorTask(task);
    const ls = this.ls;
    ls.resetState();
    ls.assignTask(converted);
    ls.initializeStore(converted);
    this.selectStart(ls);
    this.loadedResult = this.currentResult();
    ls.setFlags({ isLoading: false, noTask: false });
  }

  currentResult() {
    const selected = this.ls?.completionStore.selected;
    return JSON.stringify(selected ? selected.serializeCompletion() : []);
  }

  /** Whether the user changed the selected completion since the task was loaded (regions
   * drawn, choices made): work that leaving the task would lose. */
  hasUnsavedWork() {
    return this.ls !== null && this.currentResult() !== this.loadedResult;
  }

  /** The editor starts without a task (as Label Studio 0.9.1's label stream did): every task,
   * the first one included, comes in through `load`. */
  create(config, resolve) {
    const host = document.createElement("div");
    this.element.appendChild(host);
    const call = (name) => (...args) => (this.handlers[name] ?? noop)(...args);
    new window.LabelStudio(host, {
      config,
      interfaces: this.interfaces,
      user: { pk: 1, firstName: "", lastName: "" },
      onLabelStudioLoad: (ls) => {
        this.ls = ls;
        ls.setFlags({ isLoading: true });
        resolve();
      },
      onSubmitCompletion: call("submit"),
      onUpdateCompletion: call("update"),
      onDeleteCompletion: call("remove"),
      onSkipTask: call("skip"),
      onTaskLoad: noop,
      onEntityCreate: noop,
      onEntityDelete: noop,
      onGroundTruth: noop,
      onSelectCompletion: noop,
    });
  }

  /** Select the newest stored completion, else a new one from the first prediction (a
   * pre-annotation), else a new empty one. */
  selectStart(ls) {
    const store = ls.completionStore;
    let chosen;
    if (store.completions.length > 0) {
      chosen = store.completions[store.completions.length - 1];
    } else if (store.predictions.length > 0) {
      chosen = store.addCompletionFromPrediction(store.predictions[0]);
    } else {
      chosen = store.addCompletion({ userGenerate: true });
    }
    store.selectCompletion(chosen.id);
  }

  setLoading(loading) {
    this.ls?.setFlags({ isLoading: loading });
  }
}
