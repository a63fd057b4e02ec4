import { request as httpRequest } from "node:http";
import { connect, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import type { NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invocationErrorResponse } from "../gateway/error-response.ts";
import {
  DEFAULT_HTTP_LIMITS,
  httpLimitsFromEnv,
  parseFunctionsDomain,
  parseHttpLimits,
} from "../gateway/http-limits.ts";
import { Gateway, type GatewayOptions } from "../gateway/index.ts";
import { connectNats, LIMITS } from "../protocol/index.ts";
import { Worker } from "../runtime/index.ts";
import { Scheduler } from "../scheduler/index.ts";
import { buildBundle, HearthClient, type NatsServer, startNatsServer } from "../sdk/index.ts";

const TOKEN = "edge-token";
const DOMAIN = "fn.test";
/** The gateway's control body limit: a bundle and its source map, as escaped JSON strings. */
const CONTROL_LIMIT = (LIMITS.maxBundleBytes + LIMITS.maxSourceMapBytes) * 2;
const SECRET = "postgres://admin:hunter2@db.internal";

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

let nats: NatsServer;
let nc: NatsConnection;
let scheduler: Scheduler;
let worker: Worker;
const gateways: Gateway[] = [];
/** Default limits (6 MB bodies), host-based routing under fn.test, log lines kept. */
let main: Gateway;
let mainPort: number;
const logLines: string[] = [];
let hearth: HearthClient;

async function startGateway(options: Partial<GatewayOptions>): Promise<Gateway> {
  const gateway = new Gateway({ nc, token: TOKEN, port: 0, ...options });
  gateways.push(gateway);
  await gateway.start();
  return gateway;
}

const portOf = (gateway: Gateway) => Number(new URL(gateway.url).port);

beforeAll(async () => {
  nats = await startNatsServer({});
  nc = await connectNats(nats.url, "http-edge-test");
  scheduler = new Scheduler({ nc });
  await scheduler.start();
  worker = new Worker({ nc, natsUrl: nats.url, heartbeatMs: 200 });
  await worker.start();
  const log = pino({ level: "info" }, { write: (line: string) => void logLines.push(line) });
  main = await startGateway({ functionsDomain: DOMAIN, log });
  mainPort = portOf(main);
  hearth = new HearthClient({ url: main.url, token: TOKEN });
  // A generous CPU limit: these tests are about the edge, and a 6 MB echo on a busy machine is slow.
  const echo = { ...(await buildBundle(fixture("echo.ts"))), cpuMs: 5_000 };
  await hearth.deploy("echo", echo);
  await hearth.deploy("small", { ...echo, maxBodyBytes: 2048 });
});

afterAll(async () => {
  for (const gateway of gateways) await gateway.close();
  await worker?.close();
  await scheduler?.close();
  await nc?.close();
  await nats?.stop();
});

interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** From the first byte sent to the whole final response received. */
  readonly ms: number;
  /** 1xx answers before the final one. */
  readonly interim: number[];
  readonly socket: Socket;
  /** Resolves with the ms from the start until the connection closed. */
  readonly closed: Promise<number>;
}

/**
 * Sends a request head on a new connection, then whatever `afterHead` writes, and resolves with the
 * first final response. Raw bytes, so a test controls exactly what the server gets (and does not get).
 */
function rawRequest(
  port: number,
  head: string,
  options: { afterHead?: (socket: Socket) => void; onInterim?: (status: number, socket: Socket) => void } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const started = performance.now();
    const closed = new Promise<number>((done) => socket.once("close", () => done(performance.now() - started)));
    const interim: number[] = [];
    let received = Buffer.alloc(0);
    socket.on("error", () => {}); // a reset shows as a close before the response
    socket.on("close", () => reject(new Error(`closed before a response; got ${JSON.stringify(String(received))}`)));
    socket.on("data", (data: Buffer) => {
      received = Buffer.concat([received, data]);
      for (;;) {
        const end = received.indexOf("\r\n\r\n");
        if (end < 0) return;
        const [statusLine = "", ...lines] = received.subarray(0, end).toString("latin1").split("\r\n");
        const status = Number(statusLine.split(" ")[1]);
        const headers = Object.fromEntries(
          lines.map((line) => [
            line.slice(0, line.indexOf(":")).toLowerCase(),
            line.slice(line.indexOf(":") + 1).trim(),
          ]),
        );
        if (status < 200) {
          interim.push(status);
          received = received.subarray(end + 4);
          options.onInterim?.(status, socket);
          continue;
        }
        const body = headers["transfer-encoding"] === "chunked" ? unchunk(received.subarray(end + 4)) : received;
        const length =
          headers["transfer-encoding"] === "chunked" ? body?.length : Number(headers["content-length"] ?? 0);
        if (body === null || length === undefined || received.length < end + 4 + length) return;
        const text = (
          headers["transfer-encoding"] === "chunked" ? body : body.subarray(end + 4, end + 4 + length)
        ).toString();
        resolve({ status, headers, body: text, ms: performance.now() - started, interim, socket, closed });
        return;
      }
    });
    socket.on("connect", () => {
      socket.write(head);
      options.afterHead?.(socket);
    });
  });
}

/** The body of a chunked message, or null until its last chunk has arrived. */
function unchunk(data: Buffer): Buffer | null {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf("\r\n", at);
    if (lineEnd < 0) return null;
    const size = Number.parseInt(data.subarray(at, lineEnd).toString("latin1"), 16);
    if (size === 0) return Buffer.concat(parts);
    if (data.length < lineEnd + 2 + size + 2) return null;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}

/** A request head: `lines` are extra header lines. */
function head(method: string, target: string, lines: string[], host = "127.0.0.1"): string {
  return [`${method} ${target} HTTP/1.1`, `Host: ${host}`, ...lines, "", ""].join("\r\n");
}

const codeOf = (res: { body: string }) => JSON.parse(res.body).error.code as string;

/** Writes a chunked body, 64 KB a chunk, until the socket closes or `stop()` says so; counts bytes. */
function pumpChunks(socket: Socket, stop: () => boolean): { sent: () => number } {
  const chunk = Buffer.concat([Buffer.from("10000\r\n"), Buffer.alloc(0x10000, 97), Buffer.from("\r\n")]);
  let sent = 0;
  const pump = () => {
    while (!stop() && socket.writable) {
      sent += 0x10000;
      if (!socket.write(chunk)) {
        socket.once("drain", pump);
        return;
      }
    }
  };
  pump();
  return { sent: () => sent };
}

/** A real upload with node:http: declares `total` bytes and streams them until the response comes. */
function upload(
  port: number,
  path: string,
  total: number,
  headers: Record<string, string> = {},
): Promise<{ status?: number; code?: string; error?: string; written: number; ms: number; continued: boolean }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const chunk = Buffer.alloc(64 * 1024, 120);
    let written = 0;
    let answered = false;
    let continued = false;
    const req = httpRequest({
      host: "127.0.0.1",
      port,
      method: "PUT",
      path,
      agent: false,
      headers: { "content-length": String(total), ...headers },
    });
    const pump = () => {
      while (!answered && written < total) {
        written += chunk.length;
        if (!req.write(chunk)) {
          req.once("drain", pump);
          return;
        }
      }
      if (!answered) req.end();
    };
    req.on("response", (res) => {
      answered = true;
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (text: string) => {
        body += text;
      });
      res.on("end", () => {
        const code = JSON.parse(body).error?.code;
        resolve({ status: res.statusCode, code, written, ms: performance.now() - started, continued });
        req.destroy();
      });
    });
    req.on("continue", () => {
      continued = true;
      pump();
    });
    req.on("error", (err) => {
      if (!answered) resolve({ error: String(err), written, ms: performance.now() - started, continued });
    });
    if (headers.expect) req.flushHeaders();
    else pump();
  });
}

describe("the control API checks the token before it reads a body", () => {
  it("an unauthenticated deploy declaring 10 GB is answered 401 at once, though its body never comes", async () => {
    const res = await rawRequest(
      mainPort,
      head("PUT", "/v1/functions/x", ["Content-Type: application/json", "Content-Length: 10737418240"]),
    );
    expect([res.status, codeOf(res)]).toEqual([401, "ERR_UNAUTHORIZED"]);
    expect(res.ms).toBeLessThan(100);
    expect(res.headers.connection).toBe("close");
    // The connection ends (after a short linger), whereas reading the body would wait for 10 GB.
    expect(await res.closed).toBeLessThan(5_000);
  });

  it("a wrong token with a large body is refused the same way", async () => {
    const res = await rawRequest(
      mainPort,
      head("PUT", "/v1/functions/x", ["Authorization: Bearer wrong", "Content-Length: 50000000"]),
    );
    expect([res.status, codeOf(res), res.headers.connection]).toEqual([401, "ERR_UNAUTHORIZED", "close"]);
    expect(res.ms).toBeLessThan(100);
  });

  it("an unauthenticated deploy sending Expect: 100-continue gets 401 instead of 100 Continue", async () => {
    const res = await rawRequest(
      mainPort,
      head("PUT", "/v1/functions/x", ["Content-Length: 1000", "Expect: 100-continue"]),
    );
    expect([res.interim, res.status, codeOf(res)]).toEqual([[], 401, "ERR_UNAUTHORIZED"]);
  });

  it("an unauthenticated 100 MB deploy upload gets its 401, not a connection reset", async () => {
    const res = await upload(mainPort, "/v1/functions/x", 100 * 1024 * 1024);
    expect([res.status, res.code, res.error]).toEqual([401, "ERR_UNAUTHORIZED", undefined]);
  });

  it("an authenticated deploy declaring more than the bundle limit gets 413 without its body", async () => {
    const res = await rawRequest(
      mainPort,
      head("PUT", "/v1/functions/x", [`Authorization: Bearer ${TOKEN}`, `Content-Length: ${CONTROL_LIMIT + 1}`]),
    );
    expect([res.status, codeOf(res), res.headers.connection]).toEqual([413, "ERR_PAYLOAD_TOO_LARGE", "close"]);
    expect(res.ms).toBeLessThan(100);
  });

  it("an authenticated deploy with Expect: 100-continue gets 100 Continue, then is deployed", async () => {
    const body = JSON.stringify({ code: `export default { fetch() { return new Response("continued"); } };` });
    const res = await rawRequest(
      mainPort,
      head("PUT", "/v1/functions/continued", [
        `Authorization: Bearer ${TOKEN}`,
        "Content-Type: application/json",
        `Content-Length: ${Buffer.byteLength(body)}`,
        "Expect: 100-continue",
      ]),
      { onInterim: (_status, socket) => socket.write(body) },
    );
    expect([res.interim, res.status]).toEqual([[100], 201]);
    res.socket.destroy();
    const called = await fetch(`${main.url}/fn/continued`);
    expect(await called.text()).toBe("continued");
  });

  it("the cluster API is guarded the same way: a drain with a large body and no token is 401 at once", async () => {
    const res = await rawRequest(mainPort, head("POST", "/v1/nodes/w1/drain", ["Content-Length: 50000000"]));
    expect([res.status, codeOf(res), res.headers.connection]).toEqual([401, "ERR_UNAUTHORIZED", "close"]);
    expect(res.ms).toBeLessThan(100);
  });

  it("a bodiless control request without a token is still 401 and keeps its connection", async () => {
    const res = await rawRequest(mainPort, head("GET", "/v1/functions", []));
    expect([res.status, codeOf(res)]).toEqual([401, "ERR_UNAUTHORIZED"]);
    expect(res.headers.connection).toBe("keep-alive");
    res.socket.destroy();
  });
});

describe("a body over the limit gets 413 without being read", () => {
  const limit = LIMITS.defaultMaxBodyBytes;

  it("a declared content-length over the limit is answered 413 within 100 ms, the body never sent", async () => {
    const res = await rawRequest(mainPort, head("POST", "/fn/echo", [`Content-Length: ${limit + 1}`]));
    expect([res.status, codeOf(res), res.headers.connection]).toEqual([413, "ERR_PAYLOAD_TOO_LARGE", "close"]);
    expect(res.ms).toBeLessThan(100);
    expect(await res.closed).toBeLessThan(5_000);
  });

  it("with Expect: 100-continue, 413 comes instead of 100 Continue", async () => {
    const res = await rawRequest(
      mainPort,
      head("POST", "/fn/echo", [`Content-Length: ${limit + 1}`, "Expect: 100-continue"]),
    );
    expect([res.interim, res.status, codeOf(res)]).toEqual([[], 413, "ERR_PAYLOAD_TOO_LARGE"]);
    expect(res.ms).toBeLessThan(100);
  });

  it("with Expect: 100-continue, a body within the limit is asked for and reaches the function", async () => {
    const body = "x".repeat(5000);
    const res = await rawRequest(
      mainPort,
      head("POST", "/fn/echo", [`Content-Length: ${body.length}`, "Expect: 100-continue"]),
      { onInterim: (_status, socket) => socket.write(body) },
    );
    expect([res.interim, res.status, JSON.parse(res.body).bodyLength]).toEqual([[100], 200, 5000]);
    res.socket.destroy();
  });

  it("a function's own lower limit applies to the declared length (from the route cache)", async () => {
    const res = await rawRequest(mainPort, head("POST", "/fn/small", ["Content-Length: 4096"]));
    expect([res.status, codeOf(res)]).toEqual([413, "ERR_PAYLOAD_TOO_LARGE"]);
    expect(JSON.parse(res.body).error.message).toContain("small's 2048 byte limit");
    expect(res.ms).toBeLessThan(100);
  });

  it("an invalid function name with a declared body is answered 400 without reading the body", async () => {
    const res = await rawRequest(mainPort, head("POST", "/fn/Bad_Name", ["Content-Length: 1000000"]));
    expect([res.status, codeOf(res), res.headers.connection]).toEqual([400, "ERR_INVALID_NAME", "close"]);
  });

  it("a body to an unknown function within the limit is read and answered 404", async () => {
    const res = await rawRequest(mainPort, head("POST", "/fn/nope", ["Content-Length: 3"]), {
      afterHead: (socket) => socket.write("abc"),
    });
    expect([res.status, codeOf(res), res.headers.connection]).toEqual([404, "ERR_FUNCTION_NOT_FOUND", "keep-alive"]);
    res.socket.destroy();
  });

  it("a chunked body that grows over the limit gets 413 before the connection closes", async () => {
    let answered = false;
    let pump: { sent: () => number } | undefined;
    const res = await rawRequest(mainPort, head("POST", "/fn/echo", ["Transfer-Encoding: chunked"]), {
      afterHead: (socket) => {
        pump = pumpChunks(socket, () => answered);
      },
    });
    answered = true;
    expect([res.status, codeOf(res), res.headers.connection]).toEqual([413, "ERR_PAYLOAD_TOO_LARGE", "close"]);
    // The answer came once the limit was passed, not at the end of a body that never ends.
    expect(pump?.sent()).toBeGreaterThan(limit);
    expect(pump?.sent()).toBeLessThan(limit + 16 * 1024 * 1024);
    expect(await res.closed).toBeLessThan(10_000);
  });

  it("a chunked body over a function's own limit gets 413 too", async () => {
    let answered = false;
    const res = await rawRequest(mainPort, head("POST", "/fn/small", ["Transfer-Encoding: chunked"]), {
      afterHead: (socket) => pumpChunks(socket, () => answered),
    });
    answered = true;
    expect([res.status, codeOf(res)]).toEqual([413, "ERR_PAYLOAD_TOO_LARGE"]);
  });

  it("a real 100 MB upload receives 413, not a connection reset", async () => {
    const res = await upload(mainPort, "/fn/echo", 100 * 1024 * 1024);
    expect([res.status, res.code, res.error]).toEqual([413, "ERR_PAYLOAD_TOO_LARGE", undefined]);
    expect(res.ms).toBeLessThan(1_000);
    // Only what the sockets' buffers took before the answer arrived, not 100 MB.
    expect(res.written).toBeLessThan(32 * 1024 * 1024);
  });

  it("a real 100 MB upload with Expect: 100-continue receives 413 and never sends its body", async () => {
    const res = await upload(mainPort, "/fn/echo", 100 * 1024 * 1024, { expect: "100-continue" });
    expect([res.status, res.code, res.continued, res.written]).toEqual([413, "ERR_PAYLOAD_TOO_LARGE", false, 0]);
  });

  it("fetch() uploading 100 MB receives the 413", async () => {
    const res = await fetch(`${main.url}/fn/echo`, { method: "PUT", body: new Uint8Array(100 * 1024 * 1024) });
    expect([res.status, (await res.json()).error.code]).toEqual([413, "ERR_PAYLOAD_TOO_LARGE"]);
  });

  it("a body just at the limit still goes through, on a connection that stays open", async () => {
    const body = "y".repeat(limit);
    const res = await rawRequest(mainPort, head("POST", "/fn/echo", [`Content-Length: ${limit}`]), {
      afterHead: (socket) => socket.write(body),
    });
    expect([res.status, JSON.parse(res.body).bodyLength, res.headers.connection]).toEqual([200, limit, "keep-alive"]);
    res.socket.destroy();
  });
});

describe("timeouts and the connection cap", () => {
  let bounded: Gateway;
  let capped: Gateway;

  beforeAll(async () => {
    bounded = await startGateway({
      http: { headersTimeoutMs: 300, requestTimeoutMs: 1_000, keepAliveTimeoutMs: 300, maxConnections: 0 },
    });
    capped = await startGateway({ http: { maxConnections: 3 } });
    await hearth.deploy("slow", {
      code: `export default { async fetch() { await new Promise((r) => setTimeout(r, 1500)); return new Response("slow"); } };`,
    });
  });

  it("a client that never finishes its headers is cut off at the headers timeout with 408", async () => {
    const res = await rawRequest(portOf(bounded), "GET /healthz HTTP/1.1\r\nHost: x\r\n");
    expect(res.status).toBe(408);
    expect(res.ms).toBeGreaterThanOrEqual(290);
    expect(res.ms).toBeLessThan(300 + 500);
  });

  it("a connection that sends nothing is cut off at the headers timeout too", async () => {
    const res = await rawRequest(portOf(bounded), "");
    expect(res.status).toBe(408);
    expect(res.ms).toBeLessThan(300 + 500);
  });

  it("a slow body is cut off at the request timeout", async () => {
    let timer: NodeJS.Timeout | undefined;
    const res = await rawRequest(portOf(bounded), head("POST", "/fn/echo", ["Content-Length: 1000"]), {
      afterHead: (socket) => {
        timer = setInterval(() => socket.writable && socket.write("a"), 50);
      },
    });
    clearInterval(timer);
    expect(res.status).toBe(408);
    expect(res.ms).toBeGreaterThanOrEqual(990);
    expect(res.ms).toBeLessThan(1_000 + 500);
    expect(await res.closed).toBeLessThan(2_000);
  });

  it("a function slower than the request timeout still answers: the bound is on receiving the request", async () => {
    const res = await fetch(`${bounded.url}/fn/slow`, { method: "POST", body: "x" });
    expect([res.status, await res.text()]).toEqual([200, "slow"]);
  });

  it("an idle keep-alive connection is closed after the keep-alive timeout (plus node's 1 s buffer)", async () => {
    const res = await rawRequest(portOf(bounded), head("GET", "/healthz", []));
    expect([res.status, res.headers.connection]).toEqual([200, "keep-alive"]);
    const closedAt = await res.closed;
    expect(closedAt).toBeGreaterThanOrEqual(300);
    expect(closedAt).toBeLessThan(300 + 1_000 + 500);
  });

  it("connections over the cap are closed at once, and accepted again once one closes", async () => {
    const port = portOf(capped);
    const open = await Promise.all([1, 2, 3].map(() => rawRequest(port, head("GET", "/healthz", []))));
    expect(open.map((r) => r.status)).toEqual([200, 200, 200]);
    await expect(rawRequest(port, head("GET", "/healthz", []))).rejects.toThrow(/closed before a response/);
    open[0]?.socket.destroy();
    await open[0]?.closed;
    // The server counts the close when its side sees it, a moment after ours.
    let again: RawResponse | null = null;
    for (let attempt = 0; again === null && attempt < 40; attempt++) {
      again = await rawRequest(port, head("GET", "/healthz", [])).catch(() => null);
      if (!again) await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(again?.status).toBe(200);
    for (const r of open) r.socket.destroy();
    again?.socket.destroy();
  });

  it("limits have documented defaults and are read from HEARTH_HTTP_* variables", () => {
    expect(DEFAULT_HTTP_LIMITS).toEqual({
      headersTimeoutMs: 20_000,
      requestTimeoutMs: 60_000,
      keepAliveTimeoutMs: 65_000,
      maxConnections: 10_000,
    });
    expect(httpLimitsFromEnv({})).toEqual(DEFAULT_HTTP_LIMITS);
    expect(
      httpLimitsFromEnv({
        HEARTH_HTTP_HEADERS_TIMEOUT_MS: "5000",
        HEARTH_HTTP_REQUEST_TIMEOUT_MS: "120000",
        HEARTH_HTTP_KEEPALIVE_TIMEOUT_MS: "5000",
        HEARTH_HTTP_MAX_CONNECTIONS: "0",
      }),
    ).toEqual({ headersTimeoutMs: 5_000, requestTimeoutMs: 120_000, keepAliveTimeoutMs: 5_000, maxConnections: 0 });
  });

  it("a bad limit is refused with the variable or field named", () => {
    expect(() => httpLimitsFromEnv({ HEARTH_HTTP_MAX_CONNECTIONS: "lots" })).toThrow(/HEARTH_HTTP_MAX_CONNECTIONS/);
    expect(() => httpLimitsFromEnv({ HEARTH_HTTP_REQUEST_TIMEOUT_MS: "-1" })).toThrow(/HEARTH_HTTP_REQUEST_TIMEOUT_MS/);
    expect(() => httpLimitsFromEnv({ HEARTH_HTTP_HEADERS_TIMEOUT_MS: "90000" })).toThrow(
      /HEARTH_HTTP_HEADERS_TIMEOUT_MS \(90000\) must not be over HEARTH_HTTP_REQUEST_TIMEOUT_MS \(60000\)/,
    );
    expect(() => parseHttpLimits({ requestTimeoutMs: 1.5 })).toThrow(/requestTimeoutMs/);
    expect(() => parseHttpLimits({ nope: 1 } as never)).toThrow(/unknown HTTP limit "nope"/);
    expect(() => new Gateway({ nc, token: TOKEN, http: { headersTimeoutMs: -5 } })).toThrow(/headersTimeoutMs/);
  });
});

describe("a module whose top level throws", () => {
  beforeAll(async () => {
    // Deploys evaluate the top level and refuse this module (ERR_MODULE_INIT); a gateway without that
    // check stands for a module that throws only on workers, or one deployed before the check existed.
    const unchecked = await startGateway({ moduleCheck: { check: async () => {} } });
    await new HearthClient({ url: unchecked.url, token: TOKEN }).deploy("broken", {
      code: `throw new Error("cannot connect to ${SECRET}");\nexport default { fetch() { return new Response("x"); } };`,
    });
  });

  it("its caller gets a generic message and an error id; the log has the exception under that id", async () => {
    for (const url of [`${main.url}/fn/broken/x`, `${main.url}/fn/broken`]) {
      const res = await fetch(url);
      const text = await res.text();
      expect(res.status).toBe(500);
      const { error } = JSON.parse(text);
      expect(error).toEqual({
        code: "ERR_FUNCTION_INVALID",
        message: "The function failed to load; its deployer can find why in the logs under this error id",
        errorId: expect.any(String),
      });
      expect(text).not.toContain("hunter2");
      expect(text).not.toContain("cannot connect");
      const logged = logLines.map((line) => JSON.parse(line)).find((entry) => entry.errorId === error.errorId);
      expect(JSON.stringify(logged)).toContain(SECRET);
    }
  });

  it("an executor's ERR_FUNCTION_INVALID reply is answered the same way, under the invocation id", () => {
    const lines: string[] = [];
    const log = pino({ level: "info" }, { write: (line: string) => void lines.push(line) });
    const reply = { code: "ERR_FUNCTION_INVALID" as const, message: `Function f failed to load: ${SECRET}` };
    const res = invocationErrorResponse(reply, "inv-1", "f", log);
    expect(res.status).toBe(500);
    expect(JSON.parse(String(res.body)).error).toEqual({
      code: "ERR_FUNCTION_INVALID",
      message: expect.stringMatching(/^The function failed to load/),
      errorId: "inv-1",
    });
    expect(String(res.body)).not.toContain("hunter2");
    expect(JSON.parse(lines[0] ?? "{}")).toMatchObject({ errorId: "inv-1", fn: "f", detail: reply.message });
    // Other codes keep their message: it is Hearth's own text, not the function's.
    const timeout = invocationErrorResponse(
      { code: "ERR_FUNCTION_TIMEOUT", message: "No reply within 32000 ms", errorId: "inv-2" },
      "inv-2",
      "f",
      log,
    );
    expect(JSON.parse(String(timeout.body)).error.message).toBe("No reply within 32000 ms");
  });

  it("on a function host the caller gets the same generic answer", async () => {
    const res = await rawRequest(mainPort, head("GET", "/", [], `broken.${DOMAIN}`));
    expect([res.status, codeOf(res)]).toEqual([500, "ERR_FUNCTION_INVALID"]);
    expect(res.body).not.toContain("hunter2");
    res.socket.destroy();
  });
});

describe("host-based routing: <fn>.<functions domain>", () => {
  it("invokes the function with the path as it is, and no /fn prefix", async () => {
    const res = await rawRequest(mainPort, head("GET", "/a/b?x=1", [], `echo.${DOMAIN}:${mainPort}`));
    expect(res.status).toBe(200);
    const seen = JSON.parse(res.body);
    expect(seen.url).toBe(`http://echo.${DOMAIN}:${mainPort}/a/b?x=1`);
    expect(seen.headers["x-forwarded-host"]).toBe(`echo.${DOMAIN}:${mainPort}`);
    expect(seen.headers["x-forwarded-prefix"]).toBeUndefined();
    expect(res.headers["x-hearth-id"]).toEqual(expect.any(String));
    res.socket.destroy();
  });

  it("matches the host without a port, in any case, and with a trailing dot", async () => {
    for (const host of [`echo.${DOMAIN}`, `ECHO.FN.Test`, `echo.${DOMAIN}.`]) {
      const res = await rawRequest(mainPort, head("POST", "/p", ["Content-Length: 2"], host), {
        afterHead: (socket) => socket.write("hi"),
      });
      expect([host, res.status, new URL(JSON.parse(res.body).url).pathname, JSON.parse(res.body).body]).toEqual([
        host,
        200,
        "/p",
        "hi",
      ]);
      res.socket.destroy();
    }
  });

  it("on a function's host, /fn/<other>, /v1 and /healthz are that function's own paths", async () => {
    for (const path of ["/fn/small/x", "/v1/functions", "/healthz"]) {
      const res = await rawRequest(mainPort, head("GET", path, [], `echo.${DOMAIN}`));
      expect([path, res.status, new URL(JSON.parse(res.body).url).pathname]).toEqual([path, 200, path]);
      res.socket.destroy();
    }
  });

  it("an unknown function's host gets 404 ERR_FUNCTION_NOT_FOUND", async () => {
    const res = await rawRequest(mainPort, head("GET", "/", [], `nope.${DOMAIN}`));
    expect([res.status, codeOf(res)]).toEqual([404, "ERR_FUNCTION_NOT_FOUND"]);
    res.socket.destroy();
  });

  it("an invalid function name in the host gets 400 ERR_INVALID_NAME", async () => {
    for (const host of [`a.b.${DOMAIN}`, `-x.${DOMAIN}`, `x_y.${DOMAIN}`, `${"a".repeat(64)}.${DOMAIN}`]) {
      const res = await rawRequest(mainPort, head("GET", "/", [], host));
      expect([host, res.status, codeOf(res)]).toEqual([host, 400, "ERR_INVALID_NAME"]);
      res.socket.destroy();
    }
  });

  it("an invalid name in the host with a declared body is refused before the body is read", async () => {
    const res = await rawRequest(mainPort, head("POST", "/", ["Content-Length: 10000000"], `a.b.${DOMAIN}`));
    expect([res.status, codeOf(res), res.headers.connection]).toEqual([400, "ERR_INVALID_NAME", "close"]);
  });

  it("a declared body over the limit on a function host gets 413 at once", async () => {
    const res = await rawRequest(mainPort, head("POST", "/", ["Content-Length: 4096"], `small.${DOMAIN}`));
    expect([res.status, codeOf(res)]).toEqual([413, "ERR_PAYLOAD_TOO_LARGE"]);
    expect(res.ms).toBeLessThan(100);
  });

  it("a request target that is not a path on a function host gets 400", async () => {
    const res = await rawRequest(mainPort, head("GET", "http://elsewhere.test/x", [], `echo.${DOMAIN}`));
    expect([res.status, codeOf(res)]).toEqual([400, "ERR_BAD_REQUEST"]);
    res.socket.destroy();
  });

  it("the functions domain itself and other hosts keep the /fn/<name> routes and the control API", async () => {
    for (const host of [DOMAIN, `xecho${DOMAIN}`, "127.0.0.1", `echo.${DOMAIN}.evil.test`]) {
      const res = await rawRequest(mainPort, head("GET", "/fn/echo/q", [], host));
      expect([host, res.status, new URL(JSON.parse(res.body).url).pathname]).toEqual([host, 200, "/q"]);
      expect(JSON.parse(res.body).headers["x-forwarded-prefix"]).toBe("/fn/echo");
      res.socket.destroy();
    }
    const health = await rawRequest(mainPort, head("GET", "/healthz", [], DOMAIN));
    expect(health.status).toBe(200);
    health.socket.destroy();
  });

  it("a gateway without a functions domain routes by path only", async () => {
    const plain = await startGateway({});
    const res = await rawRequest(portOf(plain), head("GET", "/", [], `echo.${DOMAIN}`));
    expect([res.status, codeOf(res)]).toEqual([404, "ERR_NOT_FOUND"]);
    res.socket.destroy();
  });

  it("the functions domain setting is checked", () => {
    expect(parseFunctionsDomain("FN.Example.com")).toBe(".fn.example.com");
    expect(parseFunctionsDomain("*.fn.example.com.")).toBe(".fn.example.com");
    for (const bad of ["", "fn.example.com:8080", "http://fn.example", "fn..example", "-fn.example"]) {
      expect(() => parseFunctionsDomain(bad), bad).toThrow(/must be a DNS name/);
    }
    expect(() => new Gateway({ nc, token: TOKEN, functionsDomain: "bad domain" })).toThrow(/must be a DNS name/);
  });
});
