// A GraphiQL panel to attach files to the next request as one `[Upload!]` variable.
import { useState } from "react";

let attached = null;

/** The files attached for the next request (and forget them: one upload per pick). */
export function takeAttachedFiles() {
  const taken = attached;
  attached = null;
  return taken;
}

function FilesPanel() {
  const [variable, setVariable] = useState("files");
  const [names, setNames] = useState([]);
  const pick = (event) => {
    const files = Array.from(event.target.files ?? []);
    attached = files.length ? { variable, files } : null;
    setNames(files.map((f) => f.name));
  };
  return (
    <div className="labelgraph-files">
      <div className="graphiql-doc-explorer-title">Files</div>
      <p>
        Files picked here are sent with the next run as the variable below, through the GraphQL
        multipart request spec, e.g.{" "}
        <code>mutation($files: [Upload!]) {"{ importTasks(files: $files) { taskCount } }"}</code>
      </p>
      <label>
        Variable{" "}
        <input
          value={variable}
          onChange={(e) => {
            setVariable(e.target.value);
            if (attached) attached = { ...attached, variable: e.target.value };
          }}
        />
      </label>
      <p>
        <input type="file" multiple onChange={pick} aria-label="files to upload" />
      </p>
      <ul>
        {names.map((n) => (
          <li key={n}>{n}</li>
        ))}
      </ul>
    </div>
  );
}

function FilesIcon() {
  return (
    <svg viewBox="0 0 24 24" width="20" height="20" fill="none" stroke="currentColor">
      <path d="M14 3H6v18h12V7z M14 3v4h4" strokeWidth="1.5" />
    </svg>
  );
}

export const filesPlugin = { title: "Files", icon: FilesIcon, content: FilesPanel };
