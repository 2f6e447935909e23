// The labeling config (setLabelConfig), refused with the server's reasons when invalid.
import { h, notice } from "../dom.js";
import { gql } from "../graphql.js";
import { SET_LABEL_CONFIG } from "../operations.js";

export function configView(app, root) {
  const status = h("div.lg-status");
  const text = h("textarea.lg-config", { rows: 14, "aria-label": "labeling config" });
  text.value = app.project.labelConfig;
  const save = async (event) => {
    event.preventDefault();
    try {
      await gql(SET_LABEL_CONFIG, { labelConfig: text.value });
      // The editor is built once per page load from the config: load the page anew.
      location.hash = "#/";
      location.reload();
    } catch (error) {
      status.replaceChildren(notice(error.message, "error", "config-error"));
    }
  };
  root.append(h("h2", { text: "Labeling config" }), h("form.lg-form", { onSubmit: save }, text, h("button", { type: "submit", text: "Save" })), status);
}
