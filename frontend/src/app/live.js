// Live updates: GraphQL subscriptions over graphql-transport-ws, through the reference client
// (`graphql-ws`). One WebSocket per page, to this origin's /graphql (the login cookie goes
// along), opened with the first subscription and reconnected with randomised exponential
// back-off for as long as the page lives. Events sent while the socket was down are lost, so
// every reconnection (and every subscription the server ended, e.g. SUBSCRIBER_OVERFLOW when
// the page fell behind) calls `onResync`: the app reads the counters and its view anew.
import { createClient } from "graphql-ws";

const FIRST_WAIT_MS = 500;
const MAX_WAIT_MS = 30_000;
/** Errors that another attempt would only repeat. */
const FINAL_CODES = new Set(["UNAUTHENTICATED", "FORBIDDEN", "GRAPHQL_VALIDATION_FAILED"]);

/** ws(s)://<this host>/graphql */
export function socketUrl(loc = window.location) {
  return `${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}/graphql`;
}

/** Milliseconds to wait before attempt number `retries` (0, 1, ...): 0.5 s doubling up to
 * 30 s, randomised over the upper half so many pages do not come back in step. */
export function backoff(retries) {
  const ceiling = Math.min(MAX_WAIT_MS, FIRST_WAIT_MS * 2 ** Math.min(retries, 16));
  return ceiling / 2 + (Math.random() * ceiling) / 2;
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class Live {
  /** `onState(state)`: "connecting", "live" or "offline" (reconnecting, or refused for good).
   * `onResync()`: events may have been missed; read what is shown anew. */
  constructor({ onState = () => {}, onResync = () => {} } = {}) {
    this.onState = onState;
    this.onResync = onResync;
    this.state = "connecting";
    /** Events received per subscription name (the browser tests read it). */
    this.received = {};
    this.client = createClient({
      url: socketUrl(),
      lazy: true,
      keepAlive: 20_000, // a ping every 20 s; no pong in time closes and reconnects
      retryAttempts: Number.POSITIVE_INFINITY,
      shouldRetry: () => true,
      retryWait: (retries) => pause(backoff(retries)),
      on: {
        connecting: () => this.setState("connecting"),
        connected: (_socket, _payload, wasRetry) => {
          this.setState("live");
          if (wasRetry) this.onResync();
        },
        closed: () => this.setState("offline"),
      },
    });
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.onState(state);
  }

  /** Subscribe to `query` (a document with one subscription field `name`) and call
   * `onData(data[name])` for each event, until the returned function is called. A subscription
   * the server ends (or fails) is started again after a back-off, followed by `onResync`;
   * only errors another attempt would repeat (signed out, forbidden) stop it. */
  subscribe(name, query, onData) {
    let stopped = false;
    let attempt = 0;
    let dispose = () => {};
    const start = () => {
      let ended = false;
      let errors = [];
      const end = () => {
        if (ended || stopped) return;
        ended = true;
        if (errors.some((e) => FINAL_CODES.has(e?.extensions?.code))) {
          console.warn(`labelgraph: live ${name} refused: ${errors.map((e) => e.message).join("; ")}`);
          return;
        }
        pause(backoff(attempt++)).then(() => {
          if (stopped) return;
          start();
          this.onResync();
        });
      };
      dispose = this.client.subscribe(
        { query },
        {
          next: (result) => {
            if (result.errors?.length) {
              errors = result.errors;
              return;
            }
            attempt = 0;
            this.received[name] = (this.received[name] ?? 0) + 1;
            try {
              onData(result.data[name]);
            } catch (error) {
              console.error(`labelgraph: live ${name}:`, error);
            }
          },
          error: (error) => {
            errors = Array.isArray(error) ? error : [error];
            end();
          },
          complete: end,
        },
      );
    };
    start();
    return () => {
      stopped = true;
      dispose();
    };
  }
}

/** `fn` called once, `ms` after the last of a burst of calls. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
