// Builds labelgraph's browser side into ../server/static/app/ (package data of the wheel):
//   graphiql.html + graphiql.js/.css   GraphiQL with the explorer plugin (GET /graphql)
//   index.html + app.js/.css           the labeling app (GET /)
//   lsf/main.js + lsf/main.css         Label Studio's editor (label-studio@0.9.1's own build)
// Every asset is served by labelgraph itself: nothing is fetched from another origin.
// Run by `pip install` (setup.py) after `npm ci`; by hand: `npm ci && node build.mjs`.
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "server", "static", "app");
const base = "/static/app/";

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "lsf"), { recursive: true });

await esbuild.build({
  entryPoints: {
    graphiql: join(here, "src", "graphiql", "index.jsx"),
    app: join(here, "src", "app", "main.js"),
  },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  outdir: out,
  jsx: "automatic",
  define: { "process.env.NODE_ENV": '"production"' },
  loader: { ".woff2": "dataurl", ".woff": "dataurl", ".svg": "dataurl" },
  legalComments: "linked",
  logLevel: "warning",
});

// The editor ships prebuilt (webpack, window.LabelStudio); it is copied as its authors built it.
const lsf = join(here, "node_modules", "label-studio", "build", "static");
copyFileSync(join(lsf, "js", "main.js"), join(out, "lsf", "main.js"));
copyFileSync(join(lsf, "css", "main.css"), join(out, "lsf", "main.css"));
copyFileSync(join(lsf, "js", "main.js.LICENSE.txt"), join(out, "lsf", "main.js.LICENSE.txt"));
// Which editor this build bundles, for GET /version ("label-studio-frontend").
const editor = JSON.parse(readFileSync(join(here, "node_modules", "label-studio", "package.json")));
writeFileSync(
  join(out, "lsf", "build-info.json"),
  JSON.stringify({
    branch: "",
    commit: "",
    date: new Date().toISOString(),
    message: `${editor.name} ${editor.version} (npm), bundled by labelgraph`,
  }),
);

/** `/static/app/NAME?v=HASH`: a new build is a new URL, so browsers may cache for long. */
function asset(name) {
  const digest = createHash("sha256").update(readFileSync(join(out, name))).digest("hex");
  return `${base}${name}?v=${digest.slice(0, 12)}`;
}

function page(title, styles, scripts, body, style = "") {
  const links = styles.map((s) => `<link rel="stylesheet" href="${asset(s)}">`).join("\n    ");
  const tags = scripts.map((s) => `<script src="${asset(s)}"></script>`).join("\n    ");
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>${title}</title>
    <link rel="icon" href="data:,">
    ${links}${style ? `\n    <style>${style}</style>` : ""}
  </head>
  <body>
    ${body}
    ${tags}
  </body>
</html>
`;
}

writeFileSync(
  join(out, "graphiql.html"),
  page(
    "labelgraph · GraphiQL",
    ["graphiql.css"],
    ["graphiql.js"],
    '<div id="graphiql"></div>',
    "body { margin: 0; } #graphiql { height: 100vh; }",
  ),
);
writeFileSync(
  join(out, "index.html"),
  page(
    "labelgraph",
    ["lsf/main.css", "app.css"],
    ["lsf/main.js", "app.js"],
    '<div id="app"></div>',
  ),
);
console.log(`labelgraph frontend built into ${out}`);
