import { describe, expect, it } from "vitest";
import { HARD_OVERSHOOT_MB, MemoryGuard } from "./memory-guard.ts";

describe("memory guard", () => {
  function guardAt(readings: number[], hostedLimitMb = 128) {
    const events: string[] = [];
    let i = 0;
    const guard = new MemoryGuard({
      hostedLimitMb: () => hostedLimitMb,
      marginMb: 256,
      rssMb: () => readings[Math.min(i++, readings.length - 1)] ?? 0,
      onOver: (rss, bound) => events.push(`over ${rss}/${bound}`),
      onFarOver: (rss, bound) => events.push(`far ${rss}/${bound}`),
    });
    for (let n = 0; n < readings.length; n++) guard.check();
    return { events, guard };
  }

  it("bounds an executor by its hosted limits plus the margin", () => {
    expect(guardAt([100]).guard.boundMb).toBe(384);
  });

  it("stays quiet within the bound", () => {
    expect(guardAt([100, 300, 384]).events).toEqual([]);
  });

  it("says once that the bound is passed, then once that it is far passed", () => {
    const far = 384 + HARD_OVERSHOOT_MB + 1;
    expect(guardAt([300, 400, 500, far, far + 100]).events).toEqual([`over 400/384`, `far ${far}/384`]);
  });

  it("a jump straight past the hard bound ends the process without a retirement first", () => {
    expect(guardAt([2_000]).events).toEqual(["far 2000/384"]);
  });
});
