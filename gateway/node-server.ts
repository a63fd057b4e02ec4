import { type IncomingMessage, Server, type ServerOptions, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { HeaderPairs, Logger } from "../protocol/index.ts";
import { errorResponse } from "./error-response.ts";
import type { Admission } from "./handler.ts";
import { DEFAULT_HTTP_LIMITS, type HttpLimits, timeoutCheckIntervalMs } from "./http-limits.ts";
import type { HttpRequest, HttpResponse } from "./http-types.ts";

export interface NodeServerOptions {
  readonly handle: (req: HttpRequest) => Promise<HttpResponse>;
  /** Judges a request that declares a body before a byte of it is read: see handler.ts `Admission`. */
  readonly admit: Admission;
  readonly log: Logger;
  /** Header and request timeouts, keep-alive, connection cap. Default DEFAULT_HTTP_LIMITS. */
  readonly limits?: HttpLimits;
  /** After close(), connections still open this long are cut. Default DEFAULT_CLOSE_DEADLINE_MS. */
  readonly closeDeadlineMs?: number;
  /** How long a connection answered before its body was read keeps discarding input. Default LINGER_MS. */
  readonly lingerMs?: number;
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
 * A request answered before its body was read (401, 413) ends its connection, but not at once:
 * closing a socket with unread input makes the kernel send RST, and a client still uploading then
 * loses our answer (a 100 MB upload got "connection reset" instead of 413). So we send the answer and
 * FIN, discard what still arrives, and close when the client does, or after this long. nginx does the
 * same ("lingering close", up to 30 s, 5 s idle); 2 s is many round trips on any path, and bounds
 * what one refused client can make us discard.
 */
export const LINGER_MS = 2_000;

/** Dropped connections (over maxConnections) are logged at most this often. */
const DROP_LOG_INTERVAL_MS = 10_000;

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

/**
 * The thin adapter from node:http to the gateway handler. close() is bounded (see DrainingServer);
 * so are the time a client may take to send a request and the number of connections (HttpLimits).
 */
export function createNodeServer(options: NodeServerOptions): Server {
  const limits = options.limits ?? DEFAULT_HTTP_LIMITS;
  const server: DrainingServer = new DrainingServer(
    {
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: timeoutCheckIntervalMs(limits),
    },
    options.closeDeadlineMs ?? DEFAULT_CLOSE_DEADLINE_MS,
    (req, res) => {
      void serve(req, res, options, () => server.closing, false);
    },
  );
  // node:http treats 0 as "accept none"; ours means no cap.
  if (limits.maxConnections > 0) server.maxConnections = limits.maxConnections;
  // With a listener, node leaves `Expect: 100-continue` to us: a body we would refuse is never asked for.
  server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
    void serve(req, res, options, () => server.closing, true);
  });
  let dropped = 0;
  let droppedLoggedAt = 0;
  server.on("drop", () => {
    dropped++;
    const now = Date.now();
    if (now - droppedLoggedAt < DROP_LOG_INTERVAL_MS) return;
    options.log.warn(
      { dropped, maxConnections: limits.maxConnections },
      "connection cap reached; new connections closed",
    );
    droppedLoggedAt = now;
    dropped = 0;
  });
  return server;
}

async function serve(
  req: IncomingMessage,
  res: ServerResponse,
  options: NodeServerOptions,
  closing: () => boolean,
  expectsContinue: boolean,
): Promise<void> {
  const target = req.url ?? "/";
  const method = req.method ?? "GET";
  const headers = pairsOf(req.rawHeaders);
  let body: Uint8Array = EMPTY;
  const length = req.headers["content-length"];
  const chunked = req.headers["transfer-encoding"] !== undefined;
  if (chunked || (length !== undefined && length !== "0")) {
    // node's parser has already refused a malformed content-length (400).
    const admitted = options.admit(target, headers, chunked ? -1 : Number(length));
    if (typeof admitted !== "number") return refuse(req, res, admitted, options);
    if (expectsContinue) res.writeContinue();
    let read: Uint8Array | null;
    try {
      read = await readBody(req, admitted);
    } catch {
      res.destroy(); // the client went away mid-body, or sent it too slowly; nobody to answer
      return;
    }
    if (read === null) {
      const tooLarge = errorResponse("ERR_PAYLOAD_TOO_LARGE", `Request body is over the ${admitted} byte limit`);
      return refuse(req, res, tooLarge, options);
    }
    body = read;
  } else req.resume();
  const response = await options.handle({ method, target, headers, body, remoteAddress: req.socket.remoteAddress });
  send(res, response, options, closing());
}

/**
 * Answers without reading (the rest of) the body, then ends the connection: what is left of the body
 * is never read into memory, and the connection's state after an unread body is unknown. The socket
 * lingers before it closes (LINGER_MS says why): node:http would close it right after the answer.
 */
function refuse(req: IncomingMessage, res: ServerResponse, response: HttpResponse, options: NodeServerOptions): void {
  res.shouldKeepAlive = false;
  const lingerMs = options.lingerMs ?? LINGER_MS;
  // node:http ends a `Connection: close` response with socket.destroySoon(); this socket lingers instead.
  req.socket.destroySoon = function (this: Socket) {
    lingeringClose(this, lingerMs);
  };
  send(res, response, options, true);
}

function lingeringClose(socket: Socket, lingerMs: number): void {
  if (socket.writable) socket.end();
  if (socket.destroyed) return;
  // node:http's parser goes on discarding the body (the request is dumped); a client that stops
  // sending and closes ends the socket through node's own half-close handling before this fires.
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
}

function send(res: ServerResponse, response: HttpResponse, options: NodeServerOptions, closing: boolean): void {
  let headers = response.headers;
  if (closing) {
    // Node then sends `Connection: close` and ends the socket after this response.
    res.shouldKeepAlive = false;
    headers = headers.filter(([name]) => name.toLowerCase() !== "connection");
  }
  try {
    res.writeHead(response.status, flatten(headers));
    if (response.stream) void sendStream(res, response.body, response.stream, options.log);
    else res.end(response.body);
  } catch (err) {
    // Header validation in Node is the last line of defence against odd function output.
    options.log.error({ err, target: res.req.url }, "writing the response failed");
    if (!res.headersSent) {
      const fallback = errorResponse("ERR_INVALID_RESPONSE", "The function's response could not be sent");
      res.writeHead(fallback.status, flatten(fallback.headers));
      res.end(fallback.body);
    } else res.destroy();
  }
}

/**
 * Writes a streamed body chunk by chunk, waiting for the socket to drain (a slow reader slows the
 * producer, nothing piles up here). A client that goes away stops the producer at once through
 * `return()`, even while it waits for its next chunk.
 */
async function sendStream(
  res: ServerResponse,
  head: Uint8Array | string,
  stream: AsyncIterable<Uint8Array>,
  log: Logger,
): Promise<void> {
  const chunks = stream[Symbol.asyncIterator]();
  const stop = () => void chunks.return?.()?.catch(() => {});
  res.once("close", stop);
  try {
    if (head.length > 0) res.write(head);
    for (;;) {
      const next = await chunks.next();
      if (next.done || res.destroyed) break;
      if (!res.write(next.value)) {
        await new Promise<void>((resolve) => {
          const go = () => {
            res.off("drain", go);
            res.off("close", go);
            resolve();
          };
          res.on("drain", go);
          res.on("close", go);
        });
      }
    }
    res.end();
  } catch (err) {
    log.warn({ err, target: res.req.url }, "streaming the response failed");
    res.destroy();
  } finally {
    res.off("close", stop);
    stop();
  }
}

/**
 * Reads the whole body, or resolves null as soon as it is over `limit`: the caller answers 413 then,
 * and the rest of the body is discarded as it arrives, never stored.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      req.removeListener("data", onData);
      req.removeListener("end", onEnd);
      req.resume(); // flowing with no listener: what follows is dropped
      chunks.length = 0;
      resolve(null);
    };
    const onEnd = () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    req.on("data", onData);
    req.on("end", onEnd);
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
