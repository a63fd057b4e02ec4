// Deploys a function from a Node script and calls it: docs/sdk.md. Plain JavaScript, so it runs as
// it is on Node 20 or later in a project with hearth-sdk installed:
//   HEARTH_URL=http://127.0.0.1:8080 HEARTH_TOKEN=… node deploy-and-invoke.mjs
import { writeFileSync } from "node:fs";
import { buildBundle, HearthApiError, HearthClient, resolveClientConfig } from "hearth-sdk";

// HEARTH_URL and HEARTH_TOKEN, else what a running `hearth dev` saved on this machine.
const hearth = new HearthClient(resolveClientConfig());

writeFileSync(
  "greet.ts",
  `export default {
  fetch(request: Request, env: { GREETING: string }) {
    const name = new URL(request.url).searchParams.get("name") ?? "world";
    return new Response(env.GREETING + ", " + name + "!");
  },
};
`,
);

// Bundle (esbuild, with a source map) and deploy; a redeploy keeps what it does not name.
const deployed = await hearth.deploy("greet", {
  ...(await buildBundle("greet.ts")),
  env: { GREETING: "Hello" },
  memoryMb: 64,
  message: "deployed from a script",
});
console.log(`deployed ${deployed.name} version ${deployed.versionId}: ${deployed.url}`);

// Call it over HTTP.
const res = await hearth.invoke("greet", { path: "/?name=Ada" });
console.log(`${res.status} ${res.text()}`);

// Errors are HearthApiError with a stable code.
try {
  await hearth.get("no-such-function");
} catch (err) {
  if (!(err instanceof HearthApiError)) throw err;
  console.log(`${err.code} (HTTP ${err.status})`);
}
