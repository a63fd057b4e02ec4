import {
  type AsyncStore,
  HearthError,
  type InvocationStatus,
  isErrorCode,
  type ResponseHead,
} from "../protocol/index.ts";
import { errorResponse, unavailableWhileDisconnected } from "./error-response.ts";
import { type HttpRequest, type HttpResponse, jsonResponse, safeDecode } from "./http-types.ts";
import { forwardedResponseHeaders } from "./invoke-route.ts";

export interface AsyncApiDeps {
  readonly asyncStore: AsyncStore;
  /** See AsyncInvokeDeps. */
  readonly natsConnected: () => boolean;
}

/** A stored response as the status API shows it: the body inline, wherever it was kept. */
export type ResponseView = ResponseHead & { readonly bodyBytes: number } & (
    | { readonly body: string; readonly bodyEncoding: "base64" }
    /** Its object in the results store expired (it outlived the retention by a few moments). */
    | { readonly bodyExpired: true }
  );

/** `GET /v1/invocations/<id>`: `{ "invocation": InvocationView }`. */
export type InvocationView = Omit<InvocationStatus, "response"> & { readonly response?: ResponseView };

const INVOCATION_PATH = /^\/v1\/invocations\/([^/]+)(\/response)?$/;

/**
 * `GET /v1/invocations/<id>` (the status) and `GET /v1/invocations/<id>/response` (the function's
 * answer as HTTP, or 202 with the status while it is queued or running). Returns null for other
 * paths. Auth is checked by the caller.
 */
export async function handleInvocationApi(
  req: HttpRequest,
  path: string,
  deps: AsyncApiDeps,
): Promise<HttpResponse | null> {
  const match = INVOCATION_PATH.exec(path);
  if (!match) return null;
  if (req.method !== "GET") throw new HearthError("ERR_METHOD_NOT_ALLOWED", `${req.method} ${path} is not supported`);
  const down = unavailableWhileDisconnected(deps);
  if (down) return down;
  const id = safeDecode(match[1] ?? "");
  const status = await deps.asyncStore.status(id);
  if (!status) {
    throw new HearthError(
      "ERR_INVOCATION_NOT_FOUND",
      `No async invocation ${JSON.stringify(id)}: never accepted, or past its 24 h retention`,
    );
  }
  return match[2] ? await answerOf(deps.asyncStore, status) : jsonResponse(200, await viewOf(deps.asyncStore, status));
}

async function viewOf(store: AsyncStore, status: InvocationStatus): Promise<{ invocation: InvocationView }> {
  const { response, ...rest } = status;
  if (!response) return { invocation: rest };
  const body = await store.responseBody(response);
  const view: ResponseView = {
    status: response.status,
    headers: response.headers,
    bodyBytes: response.bodyBytes,
    ...(body ? { body: Buffer.from(body).toString("base64"), bodyEncoding: "base64" } : { bodyExpired: true }),
  };
  return { invocation: { ...rest, response: view } };
}

/** The invocation's outcome as the sync call would have answered it. */
async function answerOf(store: AsyncStore, status: InvocationStatus): Promise<HttpResponse> {
  // Not finished: a response there is the last failed attempt's, and another attempt is due.
  if (status.state === "queued" || status.state === "running") {
    return jsonResponse(202, await viewOf(store, status), [["x-hearth-id", status.id]]);
  }
  const { response } = status;
  if (response) {
    const body = await store.responseBody(response);
    if (!body) {
      throw new HearthError("ERR_INVOCATION_NOT_FOUND", `The response body of ${status.id} is past its retention`);
    }
    return { status: response.status, headers: forwardedResponseHeaders(response.headers, status.id), body };
  }
  // Failed without an answer (threw, timed out, never started in time): its error, as a sync caller gets it.
  const error = status.error ?? { code: "ERR_INTERNAL", message: "The invocation failed without a recorded error" };
  const answer = errorResponse(isErrorCode(error.code) ? error.code : "ERR_INTERNAL", error.message);
  return { ...answer, headers: [...answer.headers, ["x-hearth-id", status.id]] };
}
