// The app's only way to the server: GraphQL at /graphql (no REST).
// `requestHooks` lets later features add headers to every request (a CSRF token once login
// lands) without touching the callers.

const ENDPOINT = "/graphql";

/** Functions `(headers) => void` run before every request. */
export const requestHooks = [];

export class GraphQLRequestError extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join("; "));
    this.errors = errors;
    this.code = errors[0]?.extensions?.code ?? "UNKNOWN";
  }
}

/** Run one operation; resolve to its `data`, reject with GraphQLRequestError on errors.
 * `files` (a list of File) is sent as the variable `filesVariable` through the GraphQL
 * multipart request spec. */
export async function gql(query, variables = {}, { files = null, filesVariable = "files" } = {}) {
  const headers = { Accept: "application/json" };
  let body;
  if (files && files.length) {
    const form = new FormData();
    const vars = { ...variables, [filesVariable]: files.map(() => null) };
    form.append("operations", JSON.stringify({ query, variables: vars }));
    const map = Object.fromEntries(files.map((_, i) => [String(i), [`variables.${filesVariable}.${i}`]]));
    form.append("map", JSON.stringify(map));
    files.forEach((file, i) => form.append(String(i), file, file.name));
    body = form;
    headers["apollo-require-preflight"] = "true";
  } else {
    body = JSON.stringify({ query, variables });
    headers["Content-Type"] = "application/json";
  }
  for (const hook of requestHooks) hook(headers);
  const response = await fetch(ENDPOINT, { method: "POST", headers, body, credentials: "same-origin" });
  let answer;
  try {
    answer = await response.json();
  } catch {
    throw new GraphQLRequestError([{ message: `HTTP ${response.status} from ${ENDPOINT}` }]);
  }
  if (answer.errors && answer.errors.length) {
    // Signed out (or the login cookie expired) on a server with users: sign in, then come back.
    if (answer.errors.some((e) => e.extensions?.code === "UNAUTHENTICATED")) {
      window.location.assign("/login?next=/");
    }
    throw new GraphQLRequestError(answer.errors);
  }
  return answer.data;
}
