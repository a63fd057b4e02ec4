import { type IncomingMessage, Server, type ServerOptions, type ServerResponse } from "node:http";
import type { HeaderPairs, Logger } from "../protocol/index.ts";
import { errorResponse } from "./error-response.ts";
import type { HttpRequest, HttpResponse } from "./http-types.ts";

export interface NodeServerOptions {
  readonly handle: (req: HttpRequest) => Promise<HttpResponse>;
  /** Body limit by request target: invocations and the control API have different ones. */
  readonly bodyLimitFor: (target: string) => number;
  readonly log: Logger;
  /** After close(), connections still open this long are cut. Default DEFAULT_CLOSE_DEADLINE_MS. */
  readonly closeDeadlineMs?: number;
}

/**
 * How long close() lets in-flight requests finish before it cuts every connection. Under the 10 s
 * that `hearth dev` (and most orchestrators) wait between SIGTERM and SIGKILL, with room left for
 * draining NATS afterwards.
 */
export const DEFAULT_CLOSE_DEADLINE_MS = 5_000;

/**
 * Keep-alive connections idle when close() starts are closed only after this. Closing them at once
 * (what node:http's close() does) resets a request the client has just sent but we have not read
 * yet: with a client sending back to back, a SIGTERM reset every connection (4 of 4 in
 * test/dev-supervision.test.ts) and no response said `Connection: close`. Within the grace such a
 * request is read and answered with `Connection: close`; past it, a connection still idle has been
 * idle at least this long, the same race a keep-alive timeout has.
 */
const CLOSE_IDLE_GRACE_MS = 500;

const EMPTY = new Uint8Array(0);

/**
 * node:http's close() stops accepting and closes idle sockets, then waits for every other socket to
 * go idle, which a busy keep-alive client never lets happen: close() would wait forever. Here, once
 * closing, each response carries `Connection: close` (and Node ends the socket after it), sockets
 * still idle after CLOSE_IDLE_GRACE_MS are closed, and at the deadline every remaining socket is cut.
 */
class DrainingServer extends Server {
  #closing = false;
  #idleGraceOver = false;
  readonly #deadlineMs: number;

  constructor(
    options: ServerOptions,
    deadlineMs: number,
    listener: (req: IncomingMessage, res: ServerResponse) => void,
  ) {
    super(options, listener);
    this.#deadlineMs = deadlineMs;
  }

  /** True once close() was called: responses from now on end their connection. */
  get closing(): boolean {
    return this.#closing;
  }

  override close(callback?: (err?: Error) => void): this {
    if (!this.#closing) {
      this.#closing = true;
      const grace = setTimeout(() => {
        this.#idleGraceOver = true;
        this.closeIdleConnections();
      }, CLOSE_IDLE_GRACE_MS);
      const deadline = setTimeout(() => this.closeAllConnections(), this.#deadlineMs);
      grace.unref();
      deadline.unref();
      this.once("close", () => {
        clearTimeout(grace);
        clearTimeout(deadline);
      });
    }
    super.close(callback);
    return this;
  }

  /** Deferred while closing until the grace is over; node:http's close() and callers both call it. */
  override closeIdleConnections(): void {
    if (this.#closing && !this.#idleGraceOver) return;
    super.closeIdleConnections();
  }
}

/** The thin adapter from node:http to the gateway handler. close() is bounded (see DrainingServer). */
export function createNodeServer(options: NodeServerOptions): Server {
  const server: DrainingServer = new DrainingServer(
    { keepAliveTimeout: 65_000 },
    options.closeDeadlineMs ?? DEFAULT_CLOSE_DEADLINE_MS,
    (req, res) => {
      void serve(req, res, options, () => server.closing);
    },
  );
  return server;
}

async function serve(
  req: IncomingMessage,
  res: ServerResponse,
  options: NodeServerOptions,
  closing: () => boolean,
): Promise<void> {
  const target = req.url ?? "/";
  const limit = options.bodyLimitFor(target);
  let response: HttpResponse;
  let body: Uint8Array | null;
  try {
    body = await readBody(req, limit);
  } catch {
    res.destroy(); // the client went away mid-body; nobody to answer
    return;
  }
  if (body === null) {
    response = errorResponse("ERR_PAYLOAD_TOO_LARGE", `Request body is over the ${limit} byte limit`);
    res.shouldKeepAlive = false;
  } else {
    response = await options.handle({
      method: req.method ?? "GET",
      target,
      headers: pairsOf(req.rawHeaders),
      body,
      remoteAddress: req.socket.remoteAddress,
    });
  }
  let headers = response.headers;
  if (closing()) {
    // Node then sends `Connection: close` and ends the socket after this response.
    res.shouldKeepAlive = false;
    headers = headers.filter(([name]) => name.toLowerCase() !== "connection");
  }
  try {
    res.writeHead(response.status, flatten(headers));
    res.end(response.body);
  } catch (err) {
    // Header validation in Node is the last line of defence against odd function output.
    options.log.error({ err, target }, "writing the response failed");
    if (!res.headersSent) {
      const fallback = errorResponse("ERR_INVALID_RESPONSE", "The function's response could not be sent");
      res.writeHead(fallback.status, flatten(fallback.headers));
      res.end(fallback.body);
    } else res.destroy();
  }
}

/**
 * Reads the whole body, or returns null once it is over `limit`. Over the limit the rest is still
 * drained (not stored) so the client reads our 413 instead of a reset connection.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array | null> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared === 0 && req.headers["transfer-encoding"] === undefined) {
    req.resume();
    return Promise.resolve(EMPTY);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = declared > limit;
    req.on("data", (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > limit) over = true;
      if (!over) chunks.push(chunk);
      // Drain a modest overshoot so the client can read the 413; past that, stop reading at all.
      else if (size > limit * 2) {
        resolve(null);
        req.destroy();
      }
    });
    req.on("end", () => resolve(over ? null : chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function pairsOf(raw: string[]): HeaderPairs {
  const pairs: HeaderPairs = [];
  for (let i = 0; i < raw.length; i += 2) pairs.push([(raw[i] as string).toLowerCase(), raw[i + 1] as string]);
  return pairs;
}

function flatten(pairs: HeaderPairs): string[] {
  return pairs.flat();
}
