import { ReadableStream } from "web-streams-polyfill";
import { host } from "./host.ts";
import { Request, type RequestInitLike } from "./request.ts";
import { Response } from "./response.ts";

/** Outbound requests one invocation may make (Workers' free plan: 50 subrequests). */
export const MAX_FETCHES_PER_INVOCATION = 50;

interface Pending {
  resolve(response: Response): void;
  reject(err: unknown): void;
}

interface DoneResult {
  response?: {
    status: number;
    statusText: string;
    headers: Array<[string, string]>;
    url: string;
    redirected: boolean;
    /** Null when the body streams in (`stream`): read a chunk at a time through host.fetchRead. */
    body: ArrayBuffer | null;
    stream?: boolean;
  };
  error?: string;
}

/** One chunk of a streamed body, the end of it, or why it failed. */
interface ChunkResult {
  chunk?: ArrayBuffer;
  end?: boolean;
  error?: string;
}

const pending = new Map<number, Pending>();
/** Bodies with a read under way, by fetch id: the host's answer settles it. */
const reading = new Map<number, (result: ChunkResult) => void>();
let nextId = 1;

type FetchInit = RequestInitLike & { signal?: AbortSignal; redirect?: string };

/**
 * fetch() bridged to the host's undici under its egress policy. Failures reject with a TypeError,
 * as in browsers; the reason is in the message. `charge` counts this call against the current
 * invocation and returns its count so far.
 */
export function createFetch(charge: () => number) {
  return (input: string | URL | Request, init?: FetchInit) => fetch(input, init, charge);
}

async function fetch(
  input: string | URL | Request,
  init: FetchInit | undefined,
  charge: () => number,
): Promise<Response> {
  const request = new Request(input as string, init);
  const signal = init?.signal;
  signal?.throwIfAborted();
  if (charge() > MAX_FETCHES_PER_INVOCATION) {
    throw new TypeError(`fetch failed: more than ${MAX_FETCHES_PER_INVOCATION} outbound requests in one invocation`);
  }
  const body = request.body ? await request.arrayBuffer() : null;
  const redirect = init?.redirect === "manual" || init?.redirect === "error" ? init.redirect : "follow";
  const id = nextId++;
  return new Promise<Response>((resolve, reject) => {
    pending.set(id, { resolve, reject });
    signal?.addEventListener("abort", () => {
      if (pending.delete(id)) {
        host.fetchAbort(id);
        reject(signal.reason);
      }
    });
    host.fetchStart(id, { url: request.url, method: request.method, headers: [...request.headers], body, redirect });
  });
}

/**
 * The body of fetch `id` as it arrives: each pull asks the host for one chunk, so at most one is in
 * flight and the stream's queue holds one more (its default highWaterMark); the host's socket is
 * paused meanwhile. Cancelling aborts the request.
 */
function streamFromHost(id: number): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      return new Promise<void>((resolve) => {
        reading.set(id, (result) => {
          if (result.chunk instanceof ArrayBuffer) controller.enqueue(new Uint8Array(result.chunk));
          else if (result.end) controller.close();
          else controller.error(new TypeError(`fetch failed: ${result.error ?? "network error"}`));
          resolve();
        });
        host.fetchRead(id);
      });
    },
    cancel() {
      reading.delete(id);
      host.fetchAbort(id);
    },
  });
}

/** Called by the host with the outcome of fetch `id`, or with a chunk of its streamed body. */
export function fetchDone(id: number, result: DoneResult | ChunkResult): void {
  const read = reading.get(id);
  if (read) {
    reading.delete(id);
    read(result as ChunkResult);
    return;
  }
  fetchHeadDone(id, result as DoneResult);
}

function fetchHeadDone(id: number, result: DoneResult): void {
  const waiter = pending.get(id);
  if (!waiter) return;
  pending.delete(id);
  const r = result.response;
  if (!r) {
    waiter.reject(new TypeError(`fetch failed: ${result.error ?? "network error"}`));
    return;
  }
  const nullBody = r.status === 204 || r.status === 205 || r.status === 304;
  const body = nullBody ? null : r.stream ? streamFromHost(id) : r.body;
  const response = new Response(body, {
    status: r.status,
    statusText: r.statusText,
    headers: r.headers,
  });
  Object.defineProperty(response, "url", { value: r.url });
  Object.defineProperty(response, "redirected", { value: r.redirected });
  waiter.resolve(response);
}
