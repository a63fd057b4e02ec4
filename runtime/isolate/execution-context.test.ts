import { describe, expect, it } from "vitest";
import { isolatesPerTest, requestJson, text } from "../../test/support/isolate.ts";

describe("the ExecutionContext a fetch handler receives", () => {
  const { start } = isolatesPerTest();

  it("has Workers' waitUntil, passThroughOnException and props, the last an empty object no handler can change", async () => {
    const { isolate } = await start(`export default {
  fetch(request, env, ctx) {
    const before = { ...ctx.props };
    try { ctx.props.leak = request.url; } catch {} // throws in strict code, ignored in sloppy
    return Response.json({
      before,
      methods: [typeof ctx.waitUntil, typeof ctx.passThroughOnException],
      props: ctx.props,
      frozen: Object.isFrozen(ctx.props),
    });
  },
};`);
    for (const id of ["first", "second"]) {
      const out = await isolate.invoke(id, requestJson(), null);
      if (!out.ok) throw new Error(`${out.code} ${out.message}`);
      expect(JSON.parse(text(out.body))).toEqual({
        methods: ["function", "function"],
        props: {},
        before: {},
        frozen: true,
      });
    }
  });
});
