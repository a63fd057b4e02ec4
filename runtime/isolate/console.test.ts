import { describe, expect, it } from "vitest";
import { isolatesPerTest, requestJson } from "../../test/support/isolate.ts";

/**
 * The console a function gets behaves like Workers' and Node's: every method exists, and values are
 * rendered as Node's util.inspect would (Map, Set, class instances, cycles, errors, placeholders).
 * Real isolates; what the host receives is what `hearth logs` shows.
 */
const { start } = isolatesPerTest();

/** Runs `body` (statements using `console`) in a function and returns the lines it logged, as [level, text]. */
async function logged(body: string): Promise<[string, string][]> {
  const { isolate, console } = await start(
    `class Point { constructor() { this.x = 1; this.y = 2; } }
     export default { fetch() { ${body}; return new Response("ok"); } };`,
  );
  const out = await isolate.invoke("inv", requestJson(), null);
  expect(out.ok).toBe(true);
  return console.filter((line) => line.invocationId === "inv").map((line) => [line.level, line.message]);
}

describe("console", () => {
  it("renders Map, Set, class instances, cycles, nested objects and errors like Node", async () => {
    const lines = await logged(`
      console.log(new Map([["a", 1], ["b", { c: [1, 2] }]]));
      console.log(new Set([1, "two"]));
      console.log(new Point());
      const cycle = { name: "loop" }; cycle.self = cycle; console.log(cycle);
      console.log({ deep: { deeper: { deepest: { gone: true } } } });
      console.log("text", 42, null, undefined, 10n, [1, "a"]);
      console.log(new TypeError("bad input"));
    `);
    const text = lines.map(([, message]) => message);
    expect(text[0]).toBe("Map (2) {'a' => 1, 'b' => { c: [ 1, 2 ] }}");
    expect(text[1]).toBe("Set (2) {1, 'two'}");
    expect(text[2]).toBe("Point { x: 1, y: 2 }");
    expect(text[3]).toBe("{ name: 'loop', self: [Circular] }");
    expect(text[4]).toBe("{ deep: { deeper: { deepest: [Object] } } }");
    expect(text[5]).toBe("text 42 null undefined 10n [ 1, 'a' ]");
    expect(text[6]).toMatch(/^TypeError: bad input\n\s+at /);
  });

  it("fills printf-style placeholders as util.format does", async () => {
    const lines = await logged(`
      console.log("%s is %d years and %i days, %f%%", "Ada", 36.6, 4.9, "1.5");
      console.log("%o and %j", { a: 1 }, { b: 2 }, "extra");
      console.log("%c styled", "color: red");
      console.log("%s unfilled %s", "one");
    `);
    expect(lines.map(([, message]) => message)).toEqual([
      "Ada is 36.6 years and 4 days, 1.5%",
      '{ a: 1 } and {"b":2} extra',
      " styled",
      "one unfilled %s",
    ]);
  });

  it("has count, assert, time, group, dir, table and trace", async () => {
    const lines = await logged(`
      console.count(); console.count(); console.count("x"); console.countReset(); console.count();
      console.assert(1 === 1, "never shown");
      console.assert(false, "sum was %d", 3);
      console.time("t"); console.timeLog("t", "half"); console.timeEnd("t"); console.timeEnd("t");
      console.group("outer"); console.log("inside"); console.group(); console.log("two\\nlines"); console.groupEnd(); console.groupEnd();
      console.log("outside");
      console.dir({ a: { b: { c: { d: 1 } } } }, { depth: 0 });
      console.dir("quoted");
      console.table([{ a: 1, b: "x" }, { a: 2 }]);
      console.trace("here");
      console.debug("d"); console.info("i"); console.warn("w"); console.error("e"); console.dirxml("x"); console.clear();
    `);
    const [levels, text] = [lines.map(([level]) => level), lines.map(([, message]) => message)];
    expect(text.slice(0, 4)).toEqual(["default: 1", "default: 2", "x: 1", "default: 1"]);
    expect(lines[4]).toEqual(["error", "Assertion failed: sum was 3"]);
    expect(text[5]).toMatch(/^t: \d+\.\d{3}ms half$/);
    expect(text[6]).toMatch(/^t: \d+\.\d{3}ms$/);
    expect(lines[7]).toEqual(["warn", "Warning: No such label 't' for console.timeEnd()"]);
    expect(text.slice(8, 12)).toEqual(["outer", "  inside", "    two\n    lines", "outside"]);
    expect(text[12]).toBe("{ a: [Object] }");
    expect(text[13]).toBe("'quoted'");
    expect(text[14]).toBe(
      [
        "┌─────────┬───┬─────┐",
        "│ (index) │ a │ b   │",
        "├─────────┼───┼─────┤",
        "│ 0       │ 1 │ 'x' │",
        "│ 1       │ 2 │     │",
        "└─────────┴───┴─────┘",
      ].join("\n"),
    );
    expect(levels[15]).toBe("trace");
    expect(text[15]).toMatch(/^Trace: here\n\s+at /);
    expect(lines.slice(16)).toEqual([
      ["debug", "d"],
      ["info", "i"],
      ["warn", "w"],
      ["error", "e"],
      ["log", "x"],
    ]);
  });
});
