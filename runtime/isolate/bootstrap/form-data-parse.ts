/**
 * `body.formData()` (Fetch: "package data" for FormData): multipart/form-data through
 * multipart-form-data.ts, application/x-www-form-urlencoded through URLSearchParams, and a TypeError
 * for any other Content-Type.
 */
import { TextDecoder } from "@exodus/bytes/encoding-lite.js";
import { FormData } from "./form-data.ts";
import { extractMimeType } from "./mime-type.ts";
import { formDataError, MAX_FORM_PARTS, parseMultipartFormData } from "./multipart-form-data.ts";

const decoder = new TextDecoder();

/** Non-empty `&`-separated sequences: the pairs the urlencoded parser would make. */
function countUrlEncodedPairs(bytes: Uint8Array): number {
  const AMPERSAND = 0x26;
  let pairs = 0;
  let sequenceStart = 0;
  for (let i = 0; i <= bytes.byteLength; i++) {
    if (i < bytes.byteLength && bytes[i] !== AMPERSAND) continue;
    if (i > sequenceStart) pairs++;
    sequenceStart = i + 1;
  }
  return pairs;
}

function parseUrlEncoded(bytes: Uint8Array): FormData {
  // Counted first: URLSearchParams would make all the pairs (about 40 bytes each, in its own list and
  // then ours) before we could stop it; 6 MB of "a&a&..." is 3 million of them, over 64 MB of heap.
  if (countUrlEncodedPairs(bytes) > MAX_FORM_PARTS) {
    throw formDataError(`more than ${MAX_FORM_PARTS} application/x-www-form-urlencoded pairs`);
  }
  const form = new FormData();
  for (const [name, value] of new URLSearchParams(decoder.decode(bytes))) form.append(name, value);
  return form;
}

/**
 * Fetch's formData(): parses `bytes` by the body's Content-Type, multipart/form-data (with a
 * boundary) or application/x-www-form-urlencoded. Anything else, and a malformed body, is a
 * TypeError, as the spec requires.
 */
export function parseFormData(bytes: Uint8Array, contentType: string | null): FormData {
  const mimeType = extractMimeType(contentType);
  switch (mimeType?.essence) {
    case "multipart/form-data": {
      const boundary = mimeType.parameters.get("boundary");
      if (boundary === undefined) throw formDataError("multipart/form-data without a boundary parameter");
      return parseMultipartFormData(bytes, boundary);
    }
    case "application/x-www-form-urlencoded":
      return parseUrlEncoded(bytes);
    default:
      throw formDataError(
        contentType === null
          ? "the body has no Content-Type"
          : `Content-Type "${contentType}" is neither multipart/form-data nor application/x-www-form-urlencoded`,
      );
  }
}
