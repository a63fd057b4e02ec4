import { createHash, timingSafeEqual } from "node:crypto";
import { HearthError } from "../protocol/index.ts";
import { type HttpRequest, headerValue } from "./http-types.ts";

const hash = (value: string) => createHash("sha256").update(value).digest();

/** Checks `Authorization: Bearer <token>` in constant time; throws ERR_UNAUTHORIZED otherwise. */
export function createTokenCheck(token: string): (req: HttpRequest) => void {
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
