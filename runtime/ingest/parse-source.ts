/**
 * `--source <url>` of a trigger, parsed into a TriggerSource and checked once, here, so an ingester
 * never starts on a source it cannot use. Errors are ERR_BAD_REQUEST and show the expected form.
 */
import type { TriggerSource } from "../../protocol/async.ts";
import { HearthError } from "../../protocol/index.ts";

const FORMS =
  "amqp://user:pass@host:5672/<queue>, mqtt://host:1883/<topic>, nats://<subject> or jetstream://<stream>/<subject>";
/** AMQP 0-9-1 shortstr: queue and vhost names are at most 255 bytes. */
const AMQP_NAME_MAX_BYTES = 255;
/** MQTT strings carry a 2-byte length (MQTT 3.1.1 §1.5.3). */
const MQTT_TOPIC_MAX_BYTES = 65_535;

/**
 * Parses a trigger source URL. Credentials are kept in `url` (the ingester needs them); show
 * sources with {@link formatTriggerSource}, which masks the password.
 *
 * - `amqp[s]://user:pass@host:port/<queue>` (vhost `/`), or `…/<vhost>/<queue>`; percent-encode a
 *   `/` inside a name as `%2F`. Query parameters (`?heartbeat=30`) are passed to amqplib.
 * - `mqtt[s]://user:pass@host:port/<topic filter>`: everything after the first `/` is the topic,
 *   `#` and `+` included (`mqtt://host/sensors/#`).
 * - `nats://<subject>` on Hearth's own NATS; `jetstream://<stream>/<subject>`.
 *
 * @example
 * parseTriggerSource("amqp://guest:guest@127.0.0.1:5672/orders")
 * // { kind: "amqp", url: "amqp://guest:guest@127.0.0.1:5672", queue: "orders" }
 */
export function parseTriggerSource(input: string): TriggerSource {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(input)?.[1]?.toLowerCase();
  const rest = input.slice((scheme?.length ?? 0) + 3);
  switch (scheme) {
    case "amqp":
    case "amqps":
      return parseAmqp(input);
    case "mqtt":
    case "mqtts":
      return parseMqtt(scheme, rest);
    case "nats":
      if (rest.includes("/") || /:\d+$/.test(rest)) {
        throw bad(`nats://<subject> takes a subject on Hearth's own NATS, not a server address: ${input}`);
      }
      return { kind: "nats", subject: checkSubject(rest, input) };
    case "jetstream": {
      const slash = rest.indexOf("/");
      const stream = slash < 0 ? rest : rest.slice(0, slash);
      const subject = slash < 0 ? "" : rest.slice(slash + 1);
      if (!stream || !subject) throw bad(`Expected jetstream://<stream>/<subject>, got ${input}`);
      return { kind: "jetstream", stream: checkStream(stream), subject: checkSubject(subject, input) };
    }
    default:
      throw bad(`Unsupported trigger source ${JSON.stringify(maskPassword(input))}: use ${FORMS}`);
  }
}

/** A source as users may see it (`hearth triggers ls`, logs): the password replaced by `***`. */
export function formatTriggerSource(source: TriggerSource): string {
  switch (source.kind) {
    case "nats":
      return `nats://${source.subject}`;
    case "jetstream":
      return `jetstream://${source.stream}/${source.subject}`;
    case "amqp": {
      const [base = "", query] = source.url.split("?", 2);
      return `${maskPassword(base)}/${encodeURIComponent(source.queue)}${query ? `?${query}` : ""}`;
    }
    case "mqtt":
      return `${maskPassword(source.url)}/${source.topic}`;
    case "cron":
      return `cron(${source.expression})`;
  }
}

/** `scheme://user:secret@host…` → `scheme://user:***@host…`; anything else unchanged. */
export function maskPassword(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/?#]*:)[^@/?#]*@/i, "$1***@");
}

function parseAmqp(input: string): TriggerSource {
  const url = parseUrl(input);
  if (url.hash) throw bad(`An amqp source has no #fragment: ${maskPassword(input)} (percent-encode "#" as %23)`);
  const segments = url.pathname
    .split("/")
    .slice(1)
    .map((s) => decode(s, input));
  if (segments.length > 2 || segments.some((s) => s === "") || segments.length === 0) {
    throw bad(`Expected amqp://user:pass@host:5672/<queue> or …/<vhost>/<queue>, got ${maskPassword(input)}`);
  }
  const queue = segments.at(-1) as string;
  const vhost = segments.length === 2 ? segments[0] : undefined;
  for (const name of [queue, vhost]) {
    if (name !== undefined && Buffer.byteLength(name) > AMQP_NAME_MAX_BYTES) {
      throw bad(`AMQP names are at most ${AMQP_NAME_MAX_BYTES} bytes: ${JSON.stringify(name.slice(0, 40))}…`);
    }
  }
  const auth = url.username ? `${url.username}${url.password ? `:${url.password}` : ""}@` : "";
  const path = vhost === undefined ? "" : `/${encodeURIComponent(vhost)}`;
  return { kind: "amqp", url: `${url.protocol}//${auth}${url.host}${path}${url.search}`, queue };
}

function parseMqtt(scheme: string, rest: string): TriggerSource {
  // Not new URL(): `#` is MQTT's multi-level wildcard and would become a fragment.
  const slash = rest.indexOf("/");
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const input = `${scheme}://${rest}`;
  parseUrl(`${scheme}://${authority}`); // checks the host and port
  const topic = slash < 0 ? "" : decode(rest.slice(slash + 1), input);
  if (!topic) throw bad(`Expected ${scheme}://host:1883/<topic>, got ${maskPassword(input)}`);
  checkTopicFilter(topic);
  return { kind: "mqtt", url: `${scheme}://${authority}`, topic };
}

function parseUrl(input: string): URL {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw bad(`Not a valid URL: ${maskPassword(input)}`);
  }
  if (!url.hostname) throw bad(`The source URL needs a host: ${maskPassword(input)}`);
  return url;
}

/** MQTT 3.1.1 §4.7: `#` only as the whole last level, `+` only as a whole level, no NUL. */
function checkTopicFilter(topic: string): void {
  if (Buffer.byteLength(topic) > MQTT_TOPIC_MAX_BYTES) throw bad(`MQTT topic over ${MQTT_TOPIC_MAX_BYTES} bytes`);
  if (topic.includes("\u0000")) throw bad("MQTT topic contains a NUL character");
  if (/^\$share\//i.test(topic)) {
    throw bad(`Give the plain topic, not ${topic}: Hearth subscribes as the shared group $share/hearth-<trigger id>/…`);
  }
  const levels = topic.split("/");
  levels.forEach((level, i) => {
    if (level.includes("#") && (level !== "#" || i !== levels.length - 1)) {
      throw bad(`In MQTT topic ${JSON.stringify(topic)}, "#" must be a whole level and the last one (a/b/#)`);
    }
    if (level.includes("+") && level !== "+") {
      throw bad(`In MQTT topic ${JSON.stringify(topic)}, "+" must be a whole level (a/+/c)`);
    }
  });
}

/**
 * A NATS subject: dot-separated non-empty tokens, no whitespace, `*` as a whole token, `>` as the
 * whole last one. Hearth's own subjects (`hearth.…`, `$JS…`, `_INBOX…`) are refused: a trigger on
 * them would feed on Hearth's traffic, or on its own output.
 */
function checkSubject(subject: string, input: string): string {
  const tokens = subject.split(".");
  const valid =
    subject.length > 0 &&
    !/\s/.test(subject) &&
    tokens.every(
      (t, i) =>
        t.length > 0 && (!t.includes("*") || t === "*") && (!t.includes(">") || (t === ">" && i === tokens.length - 1)),
    );
  if (!valid) throw bad(`Invalid NATS subject ${JSON.stringify(subject)} in ${input}`);
  const first = tokens[0] ?? "";
  if (first === "hearth" || first === "*" || first === ">" || first.startsWith("$") || first.startsWith("_INBOX")) {
    throw bad(`A trigger cannot listen on ${JSON.stringify(subject)}: it covers Hearth's own subjects`);
  }
  return subject;
}

/** NATS stream names: no whitespace, `.`, `*`, `>`, `/` or `\` (they become subject tokens and file names). */
function checkStream(stream: string): string {
  if (/[\s.*>/\\]/.test(stream) || stream.length > 255)
    throw bad(`Invalid JetStream stream name ${JSON.stringify(stream)}`);
  if (/^HEARTH_/i.test(stream)) throw bad(`A trigger cannot consume Hearth's own stream ${stream}`);
  return stream;
}

function decode(part: string, input: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw bad(`Bad percent-encoding in ${maskPassword(input)}`);
  }
}

function bad(message: string): HearthError {
  return new HearthError("ERR_BAD_REQUEST", message);
}
