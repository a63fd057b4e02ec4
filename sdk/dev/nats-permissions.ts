import {
  ASYNC_BUCKETS,
  ASYNC_SUBJECTS,
  BUCKETS,
  inboxPrefixOf,
  LOG_STREAM,
  LOG_SUBJECTS,
  STREAMS,
  SUBJECTS,
} from "../../protocol/index.ts";

/**
 * The NATS identities of a Hearth cluster; `worker` and `executor` exist once per node. `app` is not
 * Hearth's: it is what applications use for their own events (the subjects and streams of `nats://`
 * and `jetstream://` triggers), everywhere but Hearth's space.
 */
export type NatsRole = "gateway" | "scheduler" | "worker" | "executor" | "app";

/**
 * What one identity may do, in nats-server's terms (`permissions { publish: { allow, deny },
 * subscribe: { allow, deny }, allow_responses }`). A subject matching a deny entry is refused even
 * when an allow entry matches it too. A subscription whose wildcard only overlaps a deny entry (`>`
 * against `hearth.>`) is accepted, and the server withholds the denied subjects' messages from it.
 */
export interface NatsPermissions {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
  readonly publishDeny?: readonly string[];
  readonly subscribeDeny?: readonly string[];
  /** May publish one reply to each request it received, whatever the reply subject. */
  readonly allowResponses: boolean;
}

/**
 * JetStream's API, scoped to one stream: what reading a KV bucket or an object store takes. The
 * account check `jetstreamManager()` makes; the stream's info; message gets (direct gets where the
 * stream allows them, as KV streams do, else stored-message gets, as for object stores); ordered
 * consumers for watches, key listings and object reads (create, info, delete on reset, and replies
 * to flow control). Their deliveries and every API answer come to the reader's own inbox. Found by
 * running each component against nats-server 2.9 with tracing on and reading the subjects it used;
 * nothing here writes (test/nats-auth.test.ts).
 */
function streamRead(stream: string): string[] {
  return [
    "$JS.API.INFO",
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.API.STREAM.MSG.GET.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.INFO.${stream}.>`,
    `$JS.API.CONSUMER.DELETE.${stream}.>`,
    `$JS.FC.${stream}.>`,
  ];
}

const KV_FUNCTIONS = `KV_${BUCKETS.functions}`;
const OBJ_BUNDLES = `OBJ_${BUCKETS.bundles}`;
const KV_LEADER = `KV_${BUCKETS.leader}`;
/** Versions: the control plane makes and prunes them; workers read one when a request asks for it by hash. */
const KV_VERSIONS = `KV_${BUCKETS.versions}`;
/** Sealed secrets: the gateway writes them, workers read them to load functions, executors never touch them. */
const KV_SECRETS = `KV_${BUCKETS.secrets}`;

/**
 * Opening the function store (`FunctionStore.open`, the scheduler and workers) looks both streams up,
 * creating them if missing; only the control plane may create them, so the others need them to exist
 * (`hearth dev` creates them before it starts anything else). Executors open the object store alone.
 */
const STORE_INFO = [`$JS.API.STREAM.INFO.${KV_FUNCTIONS}`, `$JS.API.STREAM.INFO.${OBJ_BUNDLES}`];

const KV_INVOCATIONS = `KV_${ASYNC_BUCKETS.invocations}`;
const KV_IDEMPOTENCY = `KV_${ASYNC_BUCKETS.idempotency}`;
const KV_TRIGGERS = `KV_${ASYNC_BUCKETS.triggers}`;
const OBJ_RESULTS = `OBJ_${ASYNC_BUCKETS.results}`;
const WORK_STREAMS = [STREAMS.async, STREAMS.triggers];

/** Opening the async store (AsyncStore.open) looks up its streams and buckets; the control plane creates them. */
const ASYNC_STORE_INFO = [
  STREAMS.async,
  STREAMS.triggers,
  STREAMS.deadLetters,
  KV_INVOCATIONS,
  KV_IDEMPOTENCY,
  OBJ_RESULTS,
].map((stream) => `$JS.API.STREAM.INFO.${stream}`);

/**
 * Pulling from durable consumers (Hearth's, on its own streams or, for jetstream:// triggers, on any
 * stream): creating or updating them (2.9's API puts the filter subject after the name), reading
 * their info, pulling, and acking (acks go to the message's `$JS.ACK.<stream>.<consumer>...` reply).
 */
const CONSUMING = [
  "$JS.API.INFO",
  "$JS.API.CONSUMER.CREATE.*.>",
  "$JS.API.CONSUMER.DURABLE.CREATE.*.*",
  "$JS.API.CONSUMER.INFO.*.*",
  "$JS.API.CONSUMER.MSG.NEXT.*.*",
  "$JS.ACK.*.*.>",
];

/** Writing a KV bucket: creating its stream and publishing to `$KV.<bucket>.<key>` (puts, deletes). */
function kvWrite(bucket: string): string[] {
  return [`$JS.API.STREAM.CREATE.KV_${bucket}`, `$KV.${bucket}.>`];
}

/**
 * Writing an object store: creating its stream, publishing chunks and metadata, and purging the chunks
 * of a deleted object (bundles no kept version uses any more are collected).
 */
function objWrite(bucket: string): string[] {
  return [`$JS.API.STREAM.CREATE.OBJ_${bucket}`, `$O.${bucket}.>`, `$JS.API.STREAM.PURGE.OBJ_${bucket}`];
}

/**
 * What accepting async invocations and serving their statuses and dead letters takes (the gateway:
 * gateway/async-invoke.ts, async-api.ts, dead-letter-api.ts). AsyncStore.open looks up and creates the
 * streams and buckets; submits publish to the async stream and write statuses and Idempotency-Key
 * claims; large results are only read (executors write them). Dead letters are listed through a pull
 * ordered consumer (hence CONSUMER.MSG.NEXT), replayed to the async or trigger stream, then deleted.
 */
function asyncGateway(): string[] {
  return [
    ...[STREAMS.async, STREAMS.triggers, STREAMS.deadLetters].flatMap((stream) => [
      `$JS.API.STREAM.INFO.${stream}`,
      `$JS.API.STREAM.CREATE.${stream}`,
    ]),
    ASYNC_SUBJECTS.allInvocations,
    ASYNC_SUBJECTS.allTriggers,
    ...streamRead(STREAMS.deadLetters),
    `$JS.API.CONSUMER.MSG.NEXT.${STREAMS.deadLetters}.>`,
    `$JS.API.STREAM.MSG.DELETE.${STREAMS.deadLetters}`,
    ...streamRead(KV_INVOCATIONS),
    ...kvWrite(ASYNC_BUCKETS.invocations),
    ...streamRead(KV_IDEMPOTENCY),
    ...kvWrite(ASYNC_BUCKETS.idempotency),
    ...streamRead(OBJ_RESULTS),
    `$JS.API.STREAM.CREATE.${OBJ_RESULTS}`,
    // Triggers: their records; a jetstream:// source's stream is checked, a removed trigger's consumer deleted.
    ...streamRead(KV_TRIGGERS),
    ...kvWrite(ASYNC_BUCKETS.triggers),
    "$JS.API.STREAM.INFO.*",
    "$JS.API.CONSUMER.CREATE.*.>",
    "$JS.API.CONSUMER.DURABLE.CREATE.*.*",
    "$JS.API.CONSUMER.INFO.*.*",
    "$JS.API.CONSUMER.DELETE.*.*",
    `$JS.API.STREAM.PURGE.${STREAMS.triggers}`,
  ];
}

/**
 * Function logs (control/logs-api.ts): the gateway creates HEARTH_LOGS and reads it through ordered
 * consumers filtered on one function, pulled (MSG.NEXT) and deleted when the reader goes.
 */
const LOGS_GATEWAY = [
  `$JS.API.STREAM.CREATE.${LOG_STREAM}`,
  ...streamRead(LOG_STREAM),
  `$JS.API.CONSUMER.MSG.NEXT.${LOG_STREAM}.>`,
];

/**
 * Tokens and namespaces (control/tokens-api.ts, namespaces-api.ts): only the gateway reads and
 * writes them; it watches the tokens bucket to check tokens without a round trip.
 */
const ACCESS_GATEWAY = [BUCKETS.tokens, BUCKETS.namespaces].flatMap((bucket) => [
  ...streamRead(`KV_${bucket}`),
  ...kvWrite(bucket),
]);

/**
 * JetStream subjects that act on one stream, one pattern per shape of API subject, so every verb
 * is covered, present and future: `STREAM.<verb>.<S>` (CREATE, UPDATE, DELETE, INFO, PURGE, SNAPSHOT,
 * RESTORE), `STREAM.<a>.<b>.<S>` (MSG.GET, MSG.DELETE, LEADER.STEPDOWN, PEER.REMOVE), direct gets,
 * `CONSUMER.<verb>.<S>` (LIST, NAMES, the pre-2.9 CREATE), `CONSUMER.<verb>.<S>.>` (CREATE, INFO,
 * DELETE), `CONSUMER.<a>.<b>.<S>.>` (DURABLE.CREATE, MSG.NEXT, LEADER.STEPDOWN), acks and flow
 * control. The cost: a consumer of someone else's stream named like one of these streams is
 * refused too.
 */
function streamAll(stream: string): string[] {
  return [
    `$JS.API.STREAM.*.${stream}`,
    `$JS.API.STREAM.*.*.${stream}`,
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.API.CONSUMER.*.${stream}`,
    `$JS.API.CONSUMER.*.${stream}.>`,
    `$JS.API.CONSUMER.*.*.${stream}.>`,
    `$JS.ACK.${stream}.>`,
    `$JS.FC.${stream}.>`,
  ];
}

/** Every bucket of Hearth's, each both as a KV bucket and as an object store, so a new bucket needs no new line here. */
const HEARTH_BUCKETS = [...Object.values(BUCKETS), ...Object.values(ASYNC_BUCKETS)];

/**
 * Hearth's own space, which the app identity may neither publish to nor subscribe to: Hearth's
 * subjects (invocations, async work, triggers, reports), its buckets' subjects and streams, its
 * work streams, JetStream's advisories (the API audit advisory carries the answers to stored-message
 * gets, Hearth's invocations among them), `$SYS`, and the inbox of every other identity (no
 * listening to their replies, no forging answers to their requests).
 *
 * A guard against mistakes, not a boundary: permissions match subjects, never the body of a
 * JetStream API request, and the app must create streams. A stream it creates may mirror or source
 * one of Hearth's (the server, not the app, then reads it: every record with its env), or capture
 * subjects no Hearth stream holds (`hearth.x.>`, another identity's inbox). Only a separate account
 * keeps applications out of Hearth's JetStream (docs/security.md).
 */
function hearthSpace(others: readonly string[]): string[] {
  return [
    "hearth.>",
    ...HEARTH_BUCKETS.flatMap((bucket) => [`$KV.${bucket}.>`, `$O.${bucket}.>`]),
    ...[
      STREAMS.async,
      STREAMS.triggers,
      STREAMS.deadLetters,
      LOG_STREAM,
      ...HEARTH_BUCKETS.flatMap((bucket) => [`KV_${bucket}`, `OBJ_${bucket}`]),
    ].flatMap(streamAll),
    "$JS.EVENT.>",
    "$SYS.>",
    ...others.map((other) => `${inboxPrefixOf(other)}.>`),
  ];
}

/**
 * The permissions of one Hearth identity: the whole matrix of docs/security.md, "NATS with least privilege". `user` names the
 * identity (its replies arrive under `inboxPrefixOf(user)`); `node` is required for workers and
 * executors, whose subjects are scoped to their node.
 *
 * - The gateway (edge and control plane) alone writes function records and bundles; it sends
 *   invocations but cannot receive them, and cannot publish what workers and executors report.
 * - A worker takes commands for its own node only and reads function records.
 * - A node's executors receive only invocations addressed to that node, read bundles, report load,
 *   and answer what they received; nothing else.
 * - The scheduler reads records, owns the leader lease, commands workers.
 * - The app identity (not a Hearth component) publishes and subscribes anywhere but Hearth's space
 *   ({@link hearthSpace}); `others` names the cluster's other users, whose inboxes it is denied.
 *
 * @example
 * permissionsFor("executor", "executor.worker-1", "worker-1").subscribe
 * // ["hearth.x.worker-1.>", "_INBOX_executor_worker-1.>"]
 */
export function permissionsFor(
  role: NatsRole,
  user: string,
  node?: string,
  others?: readonly string[],
): NatsPermissions {
  const { publish, subscribe, publishDeny, subscribeDeny, allowResponses } = grantsOf(role, user, node, others);
  const unique = (subjects: readonly string[]) => [...new Set(subjects)];
  return {
    publish: unique(publish),
    subscribe: unique(subscribe),
    ...(publishDeny ? { publishDeny: unique(publishDeny) } : {}),
    ...(subscribeDeny ? { subscribeDeny: unique(subscribeDeny) } : {}),
    allowResponses,
  };
}

function grantsOf(
  role: NatsRole,
  user: string,
  node: string | undefined,
  others: readonly string[] | undefined,
): NatsPermissions {
  const inbox = `${inboxPrefixOf(user)}.>`;
  const nodeOf = () => {
    if (!node) throw new Error(`The ${role} role is per node: name its node`);
    return node;
  };
  switch (role) {
    case "gateway":
      return {
        publish: [
          "hearth.x.>",
          SUBJECTS.gatewayLoad,
          SUBJECTS.admissionCounts,
          SUBJECTS.activate,
          SUBJECTS.status,
          SUBJECTS.drain,
          ...streamRead(KV_FUNCTIONS),
          ...kvWrite(BUCKETS.functions),
          ...streamRead(OBJ_BUNDLES),
          ...objWrite(BUCKETS.bundles),
          ...streamRead(KV_VERSIONS),
          ...kvWrite(BUCKETS.versions),
          ...asyncGateway(),
          ...LOGS_GATEWAY,
          ...streamRead(KV_SECRETS),
          ...kvWrite(BUCKETS.secrets),
          ...ACCESS_GATEWAY,
        ],
        // Its request multiplexer takes replies under the connection's own prefix, like everything else.
        // Rate limits and namespace quotas count with the other gateways (gateway/admission-limits/).
        subscribe: [
          SUBJECTS.load,
          SUBJECTS.executorLost,
          SUBJECTS.heartbeat,
          SUBJECTS.leader,
          SUBJECTS.gatewayLoad,
          SUBJECTS.admissionCounts,
          inbox,
        ],
        allowResponses: false,
      };
    case "scheduler":
      return {
        publish: [
          SUBJECTS.workerCommand("*"),
          SUBJECTS.schedulerHello,
          SUBJECTS.leader,
          SUBJECTS.executorLost,
          ...streamRead(KV_FUNCTIONS),
          ...STORE_INFO,
          ...streamRead(KV_LEADER),
          ...kvWrite(BUCKETS.leader),
          // Queue depth (stream info with per-subject counts, consumer info of jetstream:// triggers),
          // trigger records, and cron ticks into the triggers stream.
          ...ASYNC_STORE_INFO,
          "$JS.API.CONSUMER.INFO.*.*",
          ...streamRead(KV_TRIGGERS),
          ASYNC_SUBJECTS.allTriggers,
        ],
        subscribe: [
          SUBJECTS.heartbeat,
          SUBJECTS.load,
          SUBJECTS.gatewayLoad,
          SUBJECTS.executorLost,
          SUBJECTS.activate,
          SUBJECTS.status,
          SUBJECTS.drain,
          inbox,
        ],
        allowResponses: true,
      };
    case "worker":
      return {
        publish: [
          SUBJECTS.heartbeat,
          SUBJECTS.executorLost,
          ...streamRead(KV_FUNCTIONS),
          ...STORE_INFO,
          ...streamRead(KV_VERSIONS),
          ...streamRead(KV_SECRETS),
          // Queue consumers: pull, run on this node's executors, record statuses and results,
          // dead-letter (and sweep what passed MaxDeliver), move broker messages into the triggers stream.
          ...ASYNC_STORE_INFO,
          ...CONSUMING,
          SUBJECTS.invokeNode(nodeOf()),
          ...streamRead(KV_INVOCATIONS),
          ...kvWrite(ASYNC_BUCKETS.invocations),
          ...streamRead(OBJ_RESULTS),
          `$O.${ASYNC_BUCKETS.results}.>`,
          ASYNC_SUBJECTS.allDeadLetters,
          ASYNC_SUBJECTS.allTriggers,
          ...WORK_STREAMS.flatMap((stream) => [
            `$JS.API.STREAM.MSG.GET.${stream}`,
            `$JS.API.STREAM.MSG.DELETE.${stream}`,
          ]),
          ...streamRead(KV_TRIGGERS),
        ],
        subscribe: [
          SUBJECTS.workerCommand(nodeOf()),
          SUBJECTS.schedulerHello,
          ...WORK_STREAMS.map((stream) => `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.*`),
          inbox,
        ],
        allowResponses: true,
      };
    case "executor":
      return {
        // Logs of any function (NATS cannot confine an executor to its node's functions): publish only.
        publish: [SUBJECTS.load, LOG_SUBJECTS.all, ...streamRead(OBJ_BUNDLES)],
        subscribe: [SUBJECTS.invokeNode(nodeOf()), inbox],
        allowResponses: true,
      };
    case "app": {
      if (!others) throw new Error("The app role is denied the other identities' inboxes: name their users");
      const deny = hearthSpace(others.filter((other) => other !== user));
      return { publish: [">"], subscribe: [">"], publishDeny: deny, subscribeDeny: deny, allowResponses: false };
    }
  }
}

/** One `users` entry of nats-server's `authorization` block. */
export interface NatsUserConfig {
  readonly user: string;
  readonly password: string;
  readonly permissions: NatsPermissions;
}

/**
 * The `authorization { users = [...] }` block of a nats-server config. No `no_auth_user`: a client
 * without credentials is refused. Deny lists are written beside the allow lists (nats-server 2.9:
 * deny wins). Every string is JSON-quoted, which nats-server's config parser reads as is (`$JS...`
 * unquoted would be a variable reference).
 */
export function renderAuthorization(users: readonly NatsUserConfig[]): string {
  const q = (s: string) => JSON.stringify(s);
  const list = (subjects: readonly string[]) => `[${subjects.map(q).join(", ")}]`;
  const grant = (allow: readonly string[], deny: readonly string[] | undefined) =>
    deny?.length ? `{ allow: ${list(allow)}, deny: ${list(deny)} }` : `{ allow: ${list(allow)} }`;
  const entries = users.map(({ user, password, permissions: p }) =>
    [
      "    {",
      `      user: ${q(user)}, password: ${q(password)}`,
      "      permissions: {",
      `        publish: ${grant(p.publish, p.publishDeny)}`,
      `        subscribe: ${grant(p.subscribe, p.subscribeDeny)}`,
      ...(p.allowResponses ? ["        allow_responses: true"] : []),
      "      }",
      "    }",
    ].join("\n"),
  );
  return ["authorization {", "  users = [", ...entries, "  ]", "}"].join("\n");
}
