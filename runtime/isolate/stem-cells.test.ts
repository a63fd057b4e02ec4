import { describe, expect, it } from "vitest";
import { type ConsoleLine, functionCodeFor, isolateDepsFor, requestJson, text } from "../../test/support/isolate.ts";
import { FunctionIsolate } from "./function-isolate.ts";
import { StemCells } from "./stem-cells.ts";

describe("stem cells", () => {
  it("a cold start adopts a prebuilt shell of the same memory limit, with its own console and limits", async () => {
    const lines: ConsoleLine[] = [];
    const deps = await isolateDepsFor({}, lines);
    const cells = new StemCells(deps, { memoryMb: 64, size: 2, refillDelayMs: 300 });
    await expect.poll(() => cells.ready).toBe(2);
    const fn = await functionCodeFor(
      `export default { fetch() { console.log("from a stem cell"); return new Response("ok"); } };`,
      {
        memoryMb: 64,
      },
    );
    const isolate = await FunctionIsolate.create(fn, { ...deps, stemCells: cells });
    expect(cells.ready).toBe(1);
    const out = await isolate.invoke("inv-1", requestJson(), null);
    expect(out.ok && text(out.body)).toBe("ok");
    await expect.poll(() => lines.length).toBe(1);
    expect(lines[0]).toMatchObject({ message: "from a stem cell", invocationId: "inv-1" });
    // The shell taken is replaced in the background.
    await expect.poll(() => cells.ready).toBe(2);
    isolate.dispose();
    cells.dispose();
  });

  it("functions with another memory limit build their own shell", async () => {
    const deps = await isolateDepsFor();
    const cells = new StemCells(deps, { memoryMb: 64, size: 1, refillDelayMs: 300 });
    await expect.poll(() => cells.ready).toBe(1);
    const isolate = await FunctionIsolate.create(
      await functionCodeFor(`export default { fetch() { return new Response("big"); } };`, { memoryMb: 256 }),
      { ...deps, stemCells: cells },
    );
    expect(cells.ready).toBe(1);
    const out = await isolate.invoke("1", requestJson(), null);
    expect(out.ok && text(out.body)).toBe("big");
    isolate.dispose();
    cells.dispose();
  });
});
