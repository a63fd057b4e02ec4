import type { NatsConnection } from "@nats-io/transport-node";
import { type HttpRequest, type HttpResponse, jsonResponse, safeDecode } from "../gateway/http-types.ts";
import type { Endpoint } from "../gateway/routing/endpoint.ts";
import { type DrainReply, HearthError, isErrorCode, isExecutorId, SUBJECTS } from "../protocol/index.ts";

/** The leader answers status from memory; anything slower means it is in trouble. */
const LEADER_TIMEOUT_MS = 2_000;
const DRAIN_PATH = /^\/v1\/nodes\/([^/]+)\/drain$/;

export interface ClusterApiDeps {
  readonly nc: NatsConnection;
  /** This gateway's routing table, shown beside the leader's view. */
  readonly routes: () => Record<string, Endpoint[]>;
}

/**
 * `GET /v1/status` (the scheduler leader's view plus this gateway's routes) and
 * `POST /v1/nodes/<id>/drain`. Returns null for other paths. Auth is checked by the caller.
 */
export async function handleClusterApi(
  req: HttpRequest,
  path: string,
  deps: ClusterApiDeps,
): Promise<HttpResponse | null> {
  if (path === "/v1/status") {
    if (req.method !== "GET") throw new HearthError("ERR_METHOD_NOT_ALLOWED", `${req.method} ${path} is not supported`);
    const status = (await askLeader(deps.nc, SUBJECTS.status, {})) as Record<string, unknown>;
    const routes = Object.fromEntries(
      Object.entries(deps.routes()).map(([fn, endpoints]) => [
        fn,
        endpoints.map((e) => ({
          executor: e.executor,
          node: e.node,
          inFlight: e.local + e.others,
          capacity: e.capacity,
        })),
      ]),
    );
    return jsonResponse(200, { ...status, gateway: { routes } });
  }
  const drain = DRAIN_PATH.exec(path);
  if (drain) {
    if (req.method !== "POST")
      throw new HearthError("ERR_METHOD_NOT_ALLOWED", `${req.method} ${path} is not supported`);
    const node = safeDecode(drain[1] ?? "");
    if (!isExecutorId(node)) throw new HearthError("ERR_BAD_REQUEST", `Invalid node id ${JSON.stringify(node)}`);
    const reply = (await askLeader(deps.nc, SUBJECTS.drain, { node })) as DrainReply;
    if (!reply.ok) throw new HearthError(isErrorCode(reply.code) ? reply.code : "ERR_INTERNAL", reply.message ?? "");
    return jsonResponse(202, { node, state: "draining" });
  }
  return null;
}

async function askLeader(nc: NatsConnection, subject: string, body: object): Promise<unknown> {
  try {
    const msg = await nc.request(subject, JSON.stringify(body), { timeout: LEADER_TIMEOUT_MS });
    return msg.json();
  } catch (err) {
    throw new HearthError("ERR_NO_CAPACITY", "No scheduler leader answered; is a scheduler running?", { cause: err });
  }
}
