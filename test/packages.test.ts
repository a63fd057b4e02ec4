/**
 * The published packages, as a project gets them: `npm run pack` builds the tarballs, a fresh project
 * outside the monorepo installs them from the registry's point of view (no NODE_PATH, no access to
 * the monorepo's node_modules), and the CLI runs from there: `hearth` on the system's Node 20–23,
 * `hearth-server` on Node 24 (the one running this test). Needs the npm registry, as CI has it.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isServerOnly, SERVER_ONLY_PACKAGES } from "../packaging/manifest.ts";
import { freePort } from "../sdk/index.ts";
import { isAlive } from "./support/cli.ts";
import { startInProcessCluster, TEST_TOKEN } from "./support/in-process.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const ROOT_MANIFEST = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  version: string;
  devDependencies: Record<string, string>;
};
/** What a consumer type-checks with: the TypeScript most projects have, not the monorepo's. */
const CONSUMER_TYPESCRIPT = "typescript@5.9.3";
const STEP_TIMEOUT_MS = 90_000;

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The first `node` on PATH outside node_modules whose major is 20–23: what `hearth` promises to run on. */
function findOlderNode(): string | undefined {
  let candidates: string[];
  try {
    candidates = execFileSync("which", ["-a", "node"], { encoding: "utf8" }).split("\n");
  } catch {
    return undefined;
  }
  return candidates
    .filter((path) => path && !path.includes("node_modules"))
    .find((path) => {
      const major = Number(execFileSync(path, ["--version"], { encoding: "utf8" }).slice(1).split(".")[0]);
      return major >= 20 && major <= 23;
    });
}

/**
 * The environment of a project that has nothing of the monorepo: `node` (and so npm, npx and every
 * bin's shebang) is `nodeBinary`, PATH has no node_modules/.bin, and npm's variables from the test
 * run (npm_config_*, npm_package_*) and NODE_PATH / NODE_OPTIONS are gone.
 */
function projectEnv(nodeBinary: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !name.startsWith("npm_") && name !== "NODE_PATH" && name !== "NODE_OPTIONS" && name !== "INIT_CWD",
    ),
  );
  const path = (process.env.PATH ?? "").split(delimiter).filter((dir) => dir && !dir.includes("node_modules"));
  return { ...env, PATH: [dirname(nodeBinary), ...path].join(delimiter), ...extra };
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d;
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Fails with the command's output, so a broken install or build says why. */
async function runOk(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<RunResult> {
  const result = await run(command, args, cwd, env);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited ${result.code}:\n${result.stdout}\n${result.stderr}`);
  }
  return result;
}

/** A temp project with a package.json, as `npm init -y` would leave it. */
function newProject(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  return dir;
}

/** Every number among a JSON value's values (the pids `hearth dev --json` prints, however nested). */
function numbersIn(value: unknown): number[] {
  if (typeof value === "number") return [value];
  if (typeof value === "object" && value !== null) return Object.values(value).flatMap(numbersIn);
  return [];
}

/** The `hearth` bin of an installed package, as its package.json names it. */
function binOf(packageDir: string): string {
  return (JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as { bin: { hearth: string } }).bin.hearth;
}

async function getText(url: string): Promise<{ status: number; body: string }> {
  const res = await request(url);
  return { status: res.statusCode, body: await res.body.text() };
}

const olderNode = findOlderNode();
const tarballs: Record<string, string> = {};
let workDir = "";

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), "hearth-packages-"));
  const packed = await runOk(
    process.execPath,
    ["packaging/pack.ts", "--out", join(workDir, "dist")],
    ROOT,
    process.env,
  );
  for (const line of packed.stdout.trim().split("\n")) {
    const { name, tarball } = JSON.parse(line) as { name: string; tarball: string };
    tarballs[name] = tarball;
  }
}, STEP_TIMEOUT_MS);

afterAll(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe.skipIf(!olderNode)(
  `the hearth package on Node 20–23 (${olderNode ?? "skipped: no such node on PATH"})`,
  () => {
    const node = olderNode as string;
    let project = "";
    let env: NodeJS.ProcessEnv = {};
    let cluster: Awaited<ReturnType<typeof startInProcessCluster>> | undefined;

    beforeAll(async () => {
      project = newProject("hearth-consumer-");
      env = projectEnv(node);
      const [started] = await Promise.all([
        startInProcessCluster(),
        runOk(
          "npm",
          [
            "install",
            "--no-audit",
            "--no-fund",
            tarballs["hearth-sdk"] ?? "",
            CONSUMER_TYPESCRIPT,
            `hono@${ROOT_MANIFEST.devDependencies.hono}`,
          ],
          project,
          env,
        ),
      ]);
      cluster = started;
    }, STEP_TIMEOUT_MS);

    afterAll(async () => {
      await cluster?.close();
      if (project) rmSync(project, { recursive: true, force: true });
    });

    it("lists no server package in its dependencies, and installs none", () => {
      const manifest = JSON.parse(readFileSync(join(project, "node_modules/hearth-sdk/package.json"), "utf8")) as {
        dependencies: Record<string, string>;
        engines: { node: string };
      };
      const dependencies = Object.keys(manifest.dependencies);
      expect(dependencies.filter(isServerOnly)).toEqual([]);
      expect(manifest.engines.node).toBe(">=20");
      for (const name of [...SERVER_ONLY_PACKAGES, "@nats-io", "hearth-server"]) {
        expect(existsSync(join(project, "node_modules", name)), `${name} installed`).toBe(false);
      }
    });

    it("runs `npx hearth --version` on this Node", async () => {
      const result = await runOk("npx", ["hearth", "--version"], project, env);
      expect(result.stdout.trim()).toBe(ROOT_MANIFEST.version);
    });

    it("says what to install when `hearth dev` has no server", async () => {
      const result = await run("npx", ["hearth", "dev"], project, env);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain("npm i -D hearth-server");
      expect(result.stderr).toContain(
        `this is Node.js ${execFileSync(node, ["--version"], { encoding: "utf8" }).trim().slice(1)}`,
      );
    });

    it(
      "creates a Hono project with `hearth init`, deploys it with `hearth deploy`, and the cluster serves it",
      async () => {
        await runOk("npx", ["hearth", "init", ".", "--template", "hono"], project, env);
        const url = cluster?.gateway.url ?? "";
        const deployEnv = { ...env, HEARTH_URL: url, HEARTH_TOKEN: TEST_TOKEN };
        const deployed = await runOk("npx", ["hearth", "deploy"], project, deployEnv);
        expect(deployed.stdout + deployed.stderr).toContain("api");
        expect(await getText(`${url}/fn/api/`)).toEqual({ status: 200, body: "Hello from Hono on Hearth" });
        expect(await getText(`${url}/fn/api/users/7`)).toEqual({ status: 200, body: '{"id":"7"}' });
        // The project `hearth init` wrote type-checks against the installed declarations.
        const typed = await run("npx", ["tsc", "-p", "."], project, env);
        expect(typed.stdout).toBe("");
        expect(typed.code).toBe(0);
      },
      STEP_TIMEOUT_MS,
    );

    it(
      "runs docs/sdk.md's example script as it is: deploys from Node and invokes",
      async () => {
        copyFileSync(join(ROOT, "docs/examples/deploy-and-invoke.mjs"), join(project, "deploy-and-invoke.mjs"));
        const url = cluster?.gateway.url ?? "";
        const result = await runOk(node, ["deploy-and-invoke.mjs"], project, {
          ...env,
          HEARTH_URL: url,
          HEARTH_TOKEN: TEST_TOKEN,
        });
        expect(result.stdout).toBe(
          `deployed greet version 1: ${url}/fn/greet\n200 Hello, Ada!\nERR_FUNCTION_NOT_FOUND (HTTP 404)\n`,
        );
      },
      STEP_TIMEOUT_MS,
    );

    it(
      "type-checks handlers against its declarations: strict, skipLibCheck off, a Hono app satisfies ExportedHandler",
      async () => {
        const check = join(project, "types-check");
        rmSync(check, { recursive: true, force: true });
        mkdirSync(check, { recursive: true });
        writeFileSync(
          join(check, "plain.ts"),
          `import type { Env, ExecutionContext, ExportedHandler, MessageBatch, ScheduledEvent } from "hearth-sdk";
export default {
  fetch(request: Request, env: Env, ctx: ExecutionContext) {
    ctx.waitUntil(Promise.resolve());
    return new Response(\`\${request.method} \${Object.keys(env).length}\`);
  },
  async queue(batch: MessageBatch<{ id: string }>) { for (const m of batch.messages) m.ack(); },
  async scheduled(event: ScheduledEvent) { void event.cron; },
} satisfies ExportedHandler<Env, { id: string }>;
`,
        );
        writeFileSync(
          join(check, "hono.ts"),
          `import type { ExportedHandler } from "hearth-sdk";
import { Hono } from "hono";
const app = new Hono();
app.get("/", (c) => c.text("hi"));
export default app satisfies ExportedHandler;
`,
        );
        writeFileSync(
          join(check, "tsconfig.json"),
          JSON.stringify({
            compilerOptions: {
              target: "es2022",
              module: "nodenext",
              lib: ["es2022", "dom"],
              types: [],
              strict: true,
              skipLibCheck: false,
              noEmit: true,
            },
            include: ["*.ts"],
          }),
        );
        const result = await run("npx", ["tsc", "-p", "types-check"], project, env);
        // tsc prints its diagnostics on stdout; stderr may hold npm's warnings about the machine's npmrc.
        expect(result.stdout).toBe("");
        expect(result.code).toBe(0);
      },
      STEP_TIMEOUT_MS,
    );
  },
);

describe("the hearth-server package on Node 24", () => {
  let project = "";
  let dev: ChildProcess | undefined;
  let devOutput = "";

  let devPids: number[] = [];

  afterAll(async () => {
    if (dev && dev.exitCode === null) {
      const exited = new Promise((resolve) => dev?.once("exit", resolve));
      dev.kill("SIGTERM");
      await exited;
    }
    if (project) rmSync(project, { recursive: true, force: true });
  });

  it(
    "declares Node 24 and runs `hearth dev` from the compiled package: a deployed function answers",
    async () => {
      const manifest = JSON.parse(
        readFileSync(join(dirname(tarballs["hearth-sdk"] ?? ""), "hearth-server/package.json"), "utf8"),
      );
      expect(manifest.engines).toEqual({ node: ">=24" });
      project = newProject("hearth-server-consumer-");
      const port = await freePort();
      const env = projectEnv(process.execPath, {
        HEARTH_HOME: join(project, ".hearth"),
        HEARTH_PORT: String(port),
        HEARTH_TOKEN: "packages-test",
        HEARTH_LOG_LEVEL: "warn",
        NATS_URL: "",
      });
      await runOk(
        "npm",
        ["install", "--no-audit", "--no-fund", tarballs["hearth-sdk"] ?? "", tarballs["hearth-server"] ?? ""],
        project,
        env,
      );
      // The installed bin itself, not through npx: npx does not pass SIGTERM on, and the cluster
      // outlived the test (nats-server, scheduler, worker, executor) until it was killed by hand.
      const bin = join(project, "node_modules/hearth-sdk", binOf(join(project, "node_modules/hearth-sdk")));
      dev = spawn(process.execPath, [bin, "dev", "--json"], { cwd: project, env, stdio: ["ignore", "pipe", "pipe"] });
      const ready = new Promise<string>((resolve, reject) => {
        dev?.stdout?.on("data", (d: Buffer) => {
          devOutput += d;
          const line = devOutput.split("\n").find((l) => l.startsWith('{"url"'));
          if (!line) return;
          const banner = JSON.parse(line) as { url: string; pids: unknown };
          devPids = numbersIn(banner.pids);
          resolve(banner.url);
        });
        dev?.stderr?.on("data", (d: Buffer) => {
          devOutput += d;
        });
        dev?.once("exit", (code) => reject(new Error(`hearth dev exited ${code}:\n${devOutput}`)));
      });
      const url = await ready;
      // It uses each lazy part of the runtime, which the server builds from the package's own files.
      writeFileSync(
        join(project, "hello.ts"),
        `export default {
          async fetch() {
            console.log({ parts: ["inspect"] });
            const form = await new Response(new URLSearchParams("part=formData")).formData();
            const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode("x"));
            return new Response("from hearth-server: " + form.get("part") + ", " + digest.byteLength);
          },
        };\n`,
      );
      await runOk("npx", ["hearth", "deploy", "hello.ts", "--name", "hello"], project, { ...env, HEARTH_URL: url });
      expect(await getText(`${url}/fn/hello`)).toEqual({ status: 200, body: "from hearth-server: formData, 32" });
      // SIGTERM stops the whole cluster it started.
      const exited = new Promise((resolve) => dev?.once("exit", resolve));
      dev.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(devPids.length).toBeGreaterThan(2);
      expect(devPids.filter(isAlive)).toEqual([]);
    },
    STEP_TIMEOUT_MS,
  );
});
