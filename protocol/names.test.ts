import { describe, expect, it } from "vitest";
import { validateFunctionName } from "./names.ts";

describe("validateFunctionName", () => {
  it.each(["a", "hello", "my-fn-2", "0abc", "a".repeat(63)])("accepts %j", (name) => {
    expect(validateFunctionName(name)).toBe(name);
  });

  it.each(["", "Hello", "my_fn", "-lead", "trail-", "a.b", "a b", "a/b", "a*", ">", "a".repeat(64), "héllo"])(
    "rejects %j with ERR_INVALID_NAME",
    (name) => {
      expect(() => validateFunctionName(name)).toThrow(expect.objectContaining({ code: "ERR_INVALID_NAME" }));
    },
  );

  it("rejects non-strings", () => {
    expect(() => validateFunctionName(42)).toThrow(expect.objectContaining({ code: "ERR_INVALID_NAME" }));
  });
});
