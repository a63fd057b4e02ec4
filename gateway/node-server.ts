import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { HeaderPairs, Logger } from "../protocol/index.ts";
import { errorResponse } from "./error-response.ts";
import type { HttpRequest, HttpResponse } from "./http-types.ts";

export interface NodeServerOptions {
  readonly handle: (req: HttpRequest) => Promise<HttpResponse>;
  /** Body limit by request target: invocations and the control API have different ones. */
  readonly bodyLimitFor: (target: string) => number;
  readonly log: Logger;
}

const EMPTY = new Uint8Array(0);

/** The thin adapter from node:http to the gateway handler. */
export function createNodeServer(options: NodeServerOptions): Server {
  return createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    void serve(req, res, options);
  });
}

async function serve(req: IncomingMessage, res: ServerResponse, options: NodeServerOptions): Promise<void> {
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
  try {
    res.writeHead(response.status, flatten(response.headers));
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
