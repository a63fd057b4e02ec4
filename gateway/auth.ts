import { createHash, timingSafeEqual } from "node:crypto";
import { type HeaderPairs, HearthError } from "../protocol/index.ts";
import { headerValue } from "./http-types.ts";

const hash = (value: string) => createHash("sha256").update(value).digest();

/**
 * Checks `Authorization: Bearer <token>` in constant time; throws ERR_UNAUTHORIZED otherwise. Takes
 * only the headers, so the node server can run it before it reads a byte of the body.
 */
export function createTokenCheck(token: string): (req: { readonly headers: HeaderPairs }) => void {
  const expected = hash(token);
  return (req) => {
    const header = headerValue(req, "authorization") ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match?.[1] || !timingSafeEqual(hash(match[1]), expected)) {
      throw new HearthError(
        "ERR_UNAUTHORIZED",
        match ? "The token is not valid" : "Missing `Authorization: Bearer <token>` header (see HEARTH_TOKEN)",
      );
    }
  };
}
