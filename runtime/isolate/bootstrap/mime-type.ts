/**
 * Content-Type values as Fetch reads them, on whatwg-mimetype (jsdom's implementation of the MIME
 * Sniffing Standard's parser: lowercase essence and parameter names, quoted values unquoted).
 */
import MIMEType from "whatwg-mimetype/lib/mime-type.js";
import { trimTabsAndSpaces } from "./http-whitespace.ts";

/** Fetch's "get, decode, and split": commas inside a quoted string do not split the value. */
function splitHeaderValues(value: string): string[] {
  return (value.match(/(?:[^,"]|"(?:[^"\\]|\\.)*"?)+/g) ?? []).map(trimTabsAndSpaces);
}

/**
 * Fetch's "extract a MIME type" (https://fetch.spec.whatwg.org/#concept-header-extract-mime-type)
 * from a header value whose repeats are joined with ", " (as Headers.get does): the last value that
 * parses wins, keeping an earlier charset when the essence is the same. Null when none parses.
 */
export function extractMimeType(headerValue: string | null): MIMEType | null {
  if (headerValue === null) return null;
  let charset: string | null = null;
  let essence: string | null = null;
  let mimeType: MIMEType | null = null;
  for (const value of splitHeaderValues(headerValue)) {
    const parsed = MIMEType.parse(value);
    if (parsed === null || parsed.essence === "*/*") continue;
    mimeType = parsed;
    if (mimeType.essence !== essence) {
      charset = mimeType.parameters.get("charset") ?? null;
      essence = mimeType.essence;
    } else if (!mimeType.parameters.has("charset") && charset !== null) {
      mimeType.parameters.set("charset", charset);
    }
  }
  return mimeType;
}
