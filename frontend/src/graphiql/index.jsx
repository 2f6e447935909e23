// GraphiQL for labelgraph, bundled from npm (no CDN): the docs explorer, the query-builder
// explorer plugin and a "Files" panel for the GraphQL multipart request spec (importTasks,
// prepareImport take `files: [Upload!]`).
import { explorerPlugin } from "@graphiql/plugin-explorer";
import { GraphiQL } from "graphiql";
import { createRoot } from "react-dom/client";
import { filesPlugin, takeAttachedFiles } from "./files.jsx";
import "graphiql/graphiql.css";
import "@graphiql/plugin-explorer/dist/style.css";

const ENDPOINT = "/graphql";

/** Plain JSON POSTs; a multipart request (with the preflight header the server requires
 * against CSRF) when files are attached in the Files panel. */
async function fetcher(params, options) {
  const headers = { Accept: "application/json", ...(options?.headers ?? {}) };
  const attached = takeAttachedFiles();
  let body;
  if (attached) {
    body = multipartBody(params, attached);
    headers["apollo-require-preflight"] = "true";
  } else {
    body = JSON.stringify(params);
    headers["Content-Type"] = "application/json";
  }
  const response = await fetch(ENDPOINT, {
    method: "POST",
    headers,
    body,
    credentials: "same-origin",
  });
  return response.json();
}

/** The multipart request spec: `operations`, `map`, then one part per file. */
function multipartBody(params, { variable, files }) {
  const variables = { ...(params.variables ?? {}), [variable]: files.map(() => null) };
  const form = new FormData();
  form.append("operations", JSON.stringify({ ...params, variables }));
  const map = {};
  files.forEach((_, i) => {
    map[String(i)] = [`variables.${variable}.${i}`];
  });
  form.append("map", JSON.stringify(map));
  files.forEach((file, i) => form.append(String(i), file, file.name));
  return form;
}

const DEFAULT_QUERY = `# labelgraph: the GraphQL API of this labeling server.
# Ctrl-Enter runs the query; the Docs and Explorer panels are on the left.
{
  project {
    name
    taskCount
    labeledTaskCount
    nextTask { id data }
  }
}
`;

const root = createRoot(document.getElementById("graphiql"));
root.render(
  <GraphiQL
    fetcher={fetcher}
    defaultQuery={DEFAULT_QUERY}
    plugins={[explorerPlugin(), filesPlugin]}
    shouldPersistHeaders={false}
  />,
);
