import { readFileSync } from "node:fs";
import { request } from "undici";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type InProcessCluster, startInProcessCluster, TEST_TOKEN } from "./support/in-process.ts";

/** Every route docs/api.md lists, as `[method, path]`, placeholders filled with harmless values. */
function documentedRoutes(): [string, string][] {
  const doc = readFileSync(new URL("../docs/api.md", import.meta.url), "utf8");
  const routes: [string, string][] = [];
  for (const match of doc.matchAll(/^\| (GET|PUT|POST|DELETE|any) +\| `([^`]+)`/gm)) {
    const path = (match[2] as string)
      .replace("[/<path>][?<query>]", "/x")
      .replaceAll("<fn>", "api-doc")
      .replaceAll("<NAME>", "API_KEY")
      .replaceAll("<ns>", "api-doc-ns")
      .replace(/\/versions\/<id>/, "/versions/1")
      .replaceAll("<id>", "0123456789ab");
    routes.push([match[1] === "any" ? "POST" : (match[1] as string), path]);
  }
  return routes;
}

let cluster: InProcessCluster;

beforeAll(async () => {
  cluster = await startInProcessCluster({ scheduler: false, worker: false });
});

afterAll(async () => {
  await cluster?.close();
});

it("docs/api.md lists only routes the gateway has (each answers something other than 'no route')", async () => {
  const routes = documentedRoutes();
  expect(routes.length).toBeGreaterThan(30);
  for (const [method, path] of routes) {
    const res = await request(`${cluster.gateway.url}${path}`, {
      method: method as "GET",
      headers: { authorization: `Bearer ${TEST_TOKEN}`, "content-type": "application/json" },
      ...(method === "GET" || method === "DELETE" ? {} : { body: "{}" }),
    });
    const text = await res.body.text();
    const error =
      res.statusCode >= 400 ? (JSON.parse(text) as { error: { code: string; message: string } }).error : null;
    // The route exists: whatever it answers (400 for the empty body, 404 for the missing function), it is not "no route".
    expect(error?.message ?? "", `${method} ${path}`).not.toMatch(/^No route/);
    expect(error?.code, `${method} ${path}`).not.toBe("ERR_METHOD_NOT_ALLOWED");
  }
});
