import type { FunctionRecord, HeaderPairs } from "../protocol/index.ts";

/** Request headers that choose a version (lower case, as HeaderPairs hold them). */
export const VERSION_HEADERS = {
  /** `Hearth-Version: <id>`: this version, deployed or not (smoke tests); needs a control token. */
  override: "hearth-version",
  /** `Hearth-Version-Key: <any string>`: the same key lands on the same version while percentages stay. */
  key: "hearth-version-key",
} as const;

/** The version a request is served by: the function's record as it would be if that version served alone. */
export type ServedVersion = FunctionRecord;

/** A canary's record view is made once per record, not once per request. */
const canaryViews = new WeakMap<FunctionRecord, ServedVersion>();

/**
 * Picks the version of a deployment that serves one request: the function's own, or during a canary
 * the canary for `canary.percent` of requests — by the version key's hash when the request has one
 * (sticky while the percentages stay), else at random. A function without a canary pays one field
 * test. `random` is injectable for tests.
 */
export function chooseVersion(
  record: FunctionRecord,
  headers: HeaderPairs,
  random: () => number = Math.random,
): ServedVersion {
  const { canary } = record;
  if (!canary) return record;
  let key: string | undefined;
  for (const [name, value] of headers) if (name === VERSION_HEADERS.key) key = value;
  const bucket = key === undefined ? Math.floor(random() * 100) : fnv1a(key) % 100;
  return bucket < canary.percent ? canaryView(record) : record;
}

/** The record as the canary version sees it: its code, variables and limits, its id. */
export function canaryView(record: FunctionRecord): ServedVersion {
  const { canary } = record;
  if (!canary) return record;
  let view = canaryViews.get(record);
  if (!view) {
    const { id, percent: _percent, ...runnable } = canary;
    const { canary: _canary, secrets: _secrets, ...rest } = record;
    view = { ...rest, ...runnable, versionId: id };
    canaryViews.set(record, view);
  }
  return view;
}

/** The `Hearth-Version` header's value, or null when the request has none. */
export function versionOverride(headers: HeaderPairs): string | null {
  for (const [name, value] of headers) if (name === VERSION_HEADERS.override) return value;
  return null;
}

/** 32-bit FNV-1a: cheap, well spread over short keys, and the same on every gateway. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
