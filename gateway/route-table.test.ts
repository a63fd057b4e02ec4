import { describe, expect, it } from "vitest";
import type { FunctionRecord } from "../protocol/index.ts";
import { RouteTable } from "./route-table.ts";

const record = (version: string, updatedAt: string) => ({ name: "fn", version, updatedAt }) as FunctionRecord;

describe("RouteTable", () => {
  it("orders changes by KV revision, whatever the timestamps say (clock skew between gateways)", () => {
    const routes = new RouteTable();
    routes.set("fn", record("new", "2020-01-01T00:00:00Z"), 7);
    routes.set("fn", record("old", "2030-01-01T00:00:00Z"), 6);
    expect(routes.get("fn")?.version).toBe("new");
  });

  it("keeps a removal, so a late older put does not bring the function back", () => {
    const routes = new RouteTable();
    routes.set("fn", record("v1", "x"), 3);
    routes.set("fn", null, 5);
    routes.set("fn", record("v1", "x"), 3);
    expect(routes.get("fn")).toBeUndefined();
    routes.set("fn", record("v2", "y"), 6);
    expect(routes.get("fn")?.version).toBe("v2");
  });
});
