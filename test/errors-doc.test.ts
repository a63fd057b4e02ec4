import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ERROR_CODES, type ErrorCode, statusOfCode } from "../protocol/index.ts";

const doc = readFileSync(new URL("../docs/errors.md", import.meta.url), "utf8");
/** Table rows as [code, status], whatever padding the formatter added. */
const rows = new Map([...doc.matchAll(/^\|\s*`(ERR_[A-Z_]+)`\s*\|\s*(\d{3})\s*\|/gm)].map((m) => [m[1], Number(m[2])]));

describe("docs/errors.md", () => {
  it.each(Object.keys(ERROR_CODES) as ErrorCode[])("documents %s with its HTTP status", (code) => {
    expect(rows.get(code), `no table row for ${code}`).toBe(statusOfCode(code));
  });

  it("documents no code that does not exist", () => {
    expect([...rows.keys()].sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });
});
