import { randomUUID } from "node:crypto";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { type HttpRequest, type HttpResponse, jsonResponse } from "../gateway/http-types.ts";
import { type FunctionStore, HearthError, LIMITS, type Logger } from "../protocol/index.ts";
import { writeBackup } from "./backup.ts";
import { restoreBackup } from "./restore.ts";

export interface BackupApiDeps {
  readonly nc: NatsConnection;
  readonly store: FunctionStore;
  readonly asyncStore: { readonly jsm: JetStreamManager };
  readonly log: Logger;
  /** Injected for tests: session expiry. */
  readonly now?: () => number;
}

/**
 * Bytes per part of a restore upload: under the control API's body limit (twice the 10 MB bundle
 * limit, gateway/gateway.ts), so an archive of any size goes up in parts the gateway admits.
 */
export const RESTORE_PART_BYTES = Math.min(8 * 1024 * 1024, LIMITS.maxBundleBytes);
/** Archive bytes staged on one gateway at once, over all open sessions. */
export const RESTORE_MAX_STAGED_BYTES = 1024 * 1024 * 1024;
/** A session untouched this long is dropped (the client went away between parts). */
export const RESTORE_SESSION_IDLE_MS = 10 * 60 * 1000;

const SESSION_ROUTE = /^\/v1\/restore\/([0-9a-f-]{36})(?:\/(parts\/(\d+)|commit))?$/;

interface Session {
  readonly parts: Uint8Array[];
  bytes: number;
  touchedAt: number;
}

/**
 * `GET /v1/backup` streams the archive. A restore goes up in parts, since an archive may be far over
 * the control API's body limit: `POST /v1/restore` opens a session, `PUT /v1/restore/<id>/parts/<n>`
 * sends part n (0, 1, 2, ..., each at most RESTORE_PART_BYTES; resending the last one replaces it),
 * `POST /v1/restore/<id>/commit[?force=1]` checks the whole archive and applies it, `DELETE
 * /v1/restore/<id>` drops it. Parts are held in this gateway's memory until the commit: a client
 * sends all parts to one gateway (docs/backup.md). Admin only (control/authorize.ts).
 */
export function createBackupApi(deps: BackupApiDeps): (req: HttpRequest, path: string) => Promise<HttpResponse | null> {
  const now = deps.now ?? Date.now;
  const sessions = new Map<string, Session>();
  let restoring = false;
  const staged = () => [...sessions.values()].reduce((sum, s) => sum + s.bytes, 0);
  const sweep = () => {
    for (const [id, s] of sessions) if (now() - s.touchedAt > RESTORE_SESSION_IDLE_MS) sessions.delete(id);
  };
  const sessionOf = (id: string): Session => {
    const session = sessions.get(id);
    if (!session) throw new HearthError("ERR_NOT_FOUND", `No restore session ${id} (expired, committed or dropped)`);
    session.touchedAt = now();
    return session;
  };
  return async (req, path) => {
    if (path === "/v1/backup") {
      if (req.method !== "GET") throw notAllowed(req, path);
      const name = `hearth-backup-${new Date(now()).toISOString().replace(/[:.]/g, "-")}.ndjson.gz`;
      return {
        status: 200,
        headers: [
          ["content-type", "application/gzip"],
          ["content-disposition", `attachment; filename="${name}"`],
        ],
        body: "",
        stream: writeBackup(deps.nc, new Date(now())),
      };
    }
    if (path === "/v1/restore") {
      if (req.method !== "POST") throw notAllowed(req, path);
      sweep();
      const id = randomUUID();
      sessions.set(id, { parts: [], bytes: 0, touchedAt: now() });
      return jsonResponse(201, { id, partBytes: RESTORE_PART_BYTES });
    }
    const match = SESSION_ROUTE.exec(path);
    if (!match) return path.startsWith("/v1/restore/") ? notFound(path) : null;
    const id = match[1] as string;
    if (match[2] === undefined) {
      if (req.method !== "DELETE") throw notAllowed(req, path);
      sessionOf(id);
      sessions.delete(id);
      return jsonResponse(200, { deleted: id });
    }
    if (match[3] !== undefined) {
      if (req.method !== "PUT") throw notAllowed(req, path);
      const session = sessionOf(id);
      const index = Number(match[3]);
      const last = session.parts.length - 1;
      if (index !== session.parts.length && index !== last)
        throw new HearthError(
          "ERR_BAD_REQUEST",
          `Expected part ${session.parts.length} (or ${last} again), got ${index}`,
        );
      if (req.body.length === 0 || req.body.length > RESTORE_PART_BYTES)
        throw new HearthError(
          "ERR_BAD_REQUEST",
          `A part must hold 1 to ${RESTORE_PART_BYTES} bytes, got ${req.body.length}`,
        );
      const replaced = index === last ? (session.parts[last] as Uint8Array).length : 0;
      if (staged() - replaced + req.body.length > RESTORE_MAX_STAGED_BYTES)
        throw new HearthError(
          "ERR_PAYLOAD_TOO_LARGE",
          `Restores hold at most ${RESTORE_MAX_STAGED_BYTES} bytes at once`,
        );
      session.parts[index] = req.body;
      session.bytes += req.body.length - replaced;
      return jsonResponse(200, { part: index, bytes: session.bytes });
    }
    if (req.method !== "POST") throw notAllowed(req, path);
    const session = sessionOf(id);
    if (session.parts.length === 0) throw new HearthError("ERR_BAD_REQUEST", `Restore session ${id} has no parts`);
    if (restoring) throw new HearthError("ERR_CONFLICT", "Another restore is running on this gateway");
    restoring = true;
    try {
      const force = new URLSearchParams(req.target.split("?")[1] ?? "").get("force") === "1";
      const archive = async function* () {
        yield* session.parts;
      };
      const report = await restoreBackup(archive, { force }, { ...deps, jsm: deps.asyncStore.jsm });
      return jsonResponse(200, report);
    } finally {
      restoring = false;
      sessions.delete(id);
    }
  };
}

function notAllowed(req: HttpRequest, path: string): HearthError {
  return new HearthError("ERR_METHOD_NOT_ALLOWED", `${req.method} ${path} is not supported`);
}

function notFound(path: string): never {
  throw new HearthError("ERR_NOT_FOUND", `No route ${path}: restore sessions are /v1/restore/<id>[/parts/<n>|/commit]`);
}
