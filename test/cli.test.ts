import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import packageJson from "../package.json" with { type: "json" };
import { HearthClient } from "../sdk/index.ts";
import { CLI, runCli, startDevCluster } from "./support/cli.ts";
import { type InProcessCluster, startInProcessCluster, TEST_TOKEN } from "./support/in-process.ts";
import { pollUntil } from "./support/poll.ts";

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "hearth-cli-"));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** No cluster is reachable here: commands that need one fail on the connection, after their own checks. */
const NOWHERE = { HEARTH_URL: "http://127.0.0.1:1", HEARTH_HOME: join(tmpdir(), "hearth-cli-no-home") };

describe("the CLI's help, version, suggestions and exit codes", () => {
  it("--version and -v print the package's version, exit 0", async () => {
    for (const flag of ["--version", "-v"]) {
      const res = await runCli([flag], NOWHERE);
      expect([res.code, res.stdout.trim()]).toEqual([0, packageJson.version]);
    }
  });

  it.each([["deploy"], ["invoke"], ["logs"], ["secrets", "put"], ["triggers", "add"], ["init"], ["dev"]])(
    "hearth %s --help prints that command's usage and options, exit 0",
    async (...command) => {
      const res = await runCli([...command, "--help"], NOWHERE);
      expect(res.code).toBe(0);
      expect(res.stdout).toContain(`Usage: hearth ${command.join(" ")}`);
      expect(res.stdout).toContain("--json");
      expect(res.stderr).toBe("");
    },
  );

  it("help <command> is the same as <command> --help", async () => {
    const viaHelp = await runCli(["help", "deploy"], NOWHERE);
    const viaFlag = await runCli(["deploy", "--help"], NOWHERE);
    expect(viaHelp.code).toBe(0);
    expect(viaHelp.stdout).toBe(viaFlag.stdout);
  });

  it("a mistyped command or option gets a suggestion and exit code 2", async () => {
    const command = await runCli(["deplyo"], NOWHERE);
    expect(command.code).toBe(2);
    expect(command.stderr).toMatch(/unknown command 'deplyo'[\s\S]*Did you mean deploy\?/);
    const option = await runCli(["deploy", "x.ts", "--memroy", "64"], NOWHERE);
    expect(option.code).toBe(2);
    expect(option.stderr).toMatch(/unknown option '--memroy'[\s\S]*Did you mean --memory\?/);
  });

  it("a bad flag value is a usage error (2) naming the flag; a missing argument too", async () => {
    const memory = await runCli(["deploy", "x.ts", "--name", "x", "--memory", "lots"], NOWHERE);
    expect(memory.code).toBe(2);
    expect(memory.stderr).toMatch(/'--memory <MB>' argument 'lots' is invalid\. expected an integer of at least 1/);
    const rateLimit = await runCli(["deploy", "x.ts", "--name", "x", "--rate-limit", "9/hour"], NOWHERE);
    expect(rateLimit.code).toBe(2);
    expect(rateLimit.stderr).toMatch(/--rate-limit expects <requests>\/<s\|10s\|min>/);
    const missing = await runCli(["rm"], NOWHERE);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/missing required argument 'fn'/);
  });

  it("logs --version names the function's version, not the CLI's", async () => {
    const res = await runCli(["logs", "fn", "--version", "3"], NOWHERE);
    expect(res.code).toBe(1); // it tried the (unreachable) gateway
    expect(res.stdout).not.toContain(packageJson.version);
    expect(res.stderr).toContain("Could not reach the Hearth gateway at http://127.0.0.1:1");
  });

  it("--url points the CLI at a gateway, before or after the command's arguments", async () => {
    const res = await runCli(["ls", "--url", "http://127.0.0.1:2"], NOWHERE);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("at http://127.0.0.1:2");
  });

  it("errors are plain text without a terminal (even under CI or FORCE_COLOR), and JSON with --json", async () => {
    // picocolors alone would colour a pipe whenever CI or FORCE_COLOR is set, as on CI machines.
    const plain = await runCli(["ls"], { ...NOWHERE, CI: "true", FORCE_COLOR: "1" });
    expect(plain.stderr).toContain("Could not reach the Hearth gateway");
    expect(plain.stderr).not.toContain("\u001b[");
    const json = await runCli(["ls", "--json"], NOWHERE);
    expect(JSON.parse(json.stderr)).toMatchObject({ error: { code: "ECONNREFUSED" } });
  });

  it("deploy with neither an entry file nor a hearth.toml says what to do, exit 2", async () => {
    const res = await runCli(["deploy"], NOWHERE, undefined, tempDir());
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("no hearth.toml here or above");
    expect(res.stderr).toContain("hearth init");
  });

  it("a missing entry file is named in Hearth's words", async () => {
    const res = await runCli(["deploy", "./nope.ts", "--name", "x"], NOWHERE, undefined, tempDir());
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("the entry file ./nope.ts does not exist");
  });
});

describe("hearth init", () => {
  it.each(["hello", "hono", "queue", "cron"])(
    "--template %s writes a project hearth deploy can read",
    async (template) => {
      const dir = tempDir();
      const res = await runCli(["init", "app", "--template", template], NOWHERE, undefined, dir);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toContain(`Created a ${template} project in app`);
      const toml = readFileSync(join(dir, "app", "hearth.toml"), "utf8");
      expect(toml).toContain('entry = "src/index.ts"');
      expect(readFileSync(join(dir, "app", "src", "index.ts"), "utf8")).toMatch(/export default/);
      const pkg = JSON.parse(readFileSync(join(dir, "app", "package.json"), "utf8"));
      expect(pkg.scripts.deploy).toBe("hearth deploy");
      if (template === "hono") expect(pkg.dependencies.hono).toBeDefined();
    },
  );

  it("refuses to overwrite a project without --force, and keeps an existing package.json's fields", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "mine", version: "1.2.3" }));
    expect((await runCli(["init"], NOWHERE, undefined, dir)).code).toBe(0);
    const again = await runCli(["init"], NOWHERE, undefined, dir);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("hearth.toml, src/index.ts, tsconfig.json already exist");
    expect(JSON.parse(readFileSync(join(dir, "package.json"), "utf8"))).toMatchObject({
      name: "mine",
      version: "1.2.3",
      scripts: { deploy: "hearth deploy" },
    });
    const unknown = await runCli(["init", "--template", "helo"], NOWHERE, undefined, tempDir());
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/Allowed choices are hello, hono, queue, cron/);
  });
});

describe("hearth deploy with a project file, against a cluster", () => {
  let cluster: InProcessCluster;
  const env = () => ({ HEARTH_URL: cluster.gateway.url, HEARTH_TOKEN: TEST_TOKEN, HEARTH_HOME: NOWHERE.HEARTH_HOME });
  beforeAll(async () => {
    cluster = await startInProcessCluster();
  });
  afterAll(async () => {
    await cluster?.close();
  });

  function project(toml: string, files: Record<string, string>): string {
    const dir = tempDir();
    writeFileSync(join(dir, "hearth.toml"), toml);
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
    return dir;
  }

  const answer = (text: string) =>
    `export default { fetch: () => new Response(${JSON.stringify(text)} + (globalThis.ENV ?? "")) };`;

  it("deploys every declared function with its settings, env and triggers; flags override the file", async () => {
    const dir = project(
      `[[functions]]
name = "toml-a"
entry = "a.ts"
rate_limit = "50/10s"
[functions.env]
GREETING = "hi"
[functions.limits]
memory_mb = 64
timeout_ms = 5000
[[functions.triggers]]
source = "nats://toml.events"
batch_size = 5
[[functions.triggers]]
cron = "0 6 * * *"

[[functions]]
name = "toml-b"
entry = "b.ts"
`,
      {
        "a.ts": `export default { fetch: (_r: Request, env: { GREETING: string }) => new Response(env.GREETING + " from a") };`,
        "b.ts": answer("b"),
      },
    );
    const res = await runCli(["deploy"], env(), undefined, dir);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/Deployed toml-a: version 1 \([\d.]+ KB/);
    expect(res.stdout).toMatch(/bundled in \d+ ms, uploaded in \d+ ms · limits: 64 MB, \d+ ms CPU, 5 s wall/);
    expect(res.stdout).toContain("Deployed toml-b");
    expect(res.stdout).toContain(`${cluster.gateway.url}/fn/toml-a`);

    const a = await cluster.hearth.get("toml-a");
    expect(a).toMatchObject({ memoryMb: 64, timeoutMs: 5000, env: { GREETING: "hi" } });
    expect(a.rateLimit).toEqual({ requests: 50, periodSeconds: 10 });
    expect((await cluster.hearth.invoke("toml-a")).text()).toBe("hi from a");
    const triggers = await cluster.hearth.triggers("toml-a");
    expect(triggers.map((t) => t.source).sort()).toEqual(["cron(0 6 * * *)", "nats://toml.events"]);

    // Again, one function named, a flag overriding the file: no duplicate triggers, memory from the flag.
    const again = await runCli(["deploy", "toml-a", "--memory", "96"], env(), undefined, dir);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain("memoryMb 64 → 96");
    expect(again.stdout).not.toContain("toml-b");
    expect((await cluster.hearth.get("toml-a")).memoryMb).toBe(96);
    expect(await cluster.hearth.triggers("toml-a")).toHaveLength(2);
  });

  it("--env-from reads a dotenv file (Node's format); --env wins over it; a missing file is a usage error", async () => {
    const dir = project('[[functions]]\nname = "env-file"\nentry = "e.ts"\n', {
      "e.ts": answer("e"),
      ".env": '# comment\nA=1\nB="two words"\nexport C=3\n',
    });
    const res = await runCli(["deploy", "--env-from", ".env", "-e", "A=from-flag"], env(), undefined, dir);
    expect(res.code, res.stderr).toBe(0);
    expect((await cluster.hearth.get("env-file")).env).toEqual({ A: "from-flag", B: "two words", C: "3" });
    const missing = await runCli(["deploy", "--env-from", "nope.env"], env(), undefined, dir);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("--env-from nope.env cannot be read (ENOENT)");
  });

  it("a bad project file is refused before anything is deployed, naming the key", async () => {
    const cases: Array<[string, RegExp]> = [
      [
        '[[functions]]\nname = "x"\nentry = "a.ts"\n[functions.limits]\nmemroy_mb = 1\n',
        /memroy_mb is not a setting; did you mean memory_mb\?/,
      ],
      ['[[functions]]\nname = "x"\n', /needs entry = /],
      [
        '[[functions]]\nname = "x"\nentry = "a.ts"\n[functions.env]\nN = 1\n',
        /env\.N must be a string \(quote numbers: N = "1"\)/,
      ],
      ["[[functions]\n", /is not valid TOML/],
      [
        '[[functions]]\nname = "x"\nentry = "a.ts"\n[[functions]]\nname = "x"\nentry = "a.ts"\n',
        /declares the function "x" twice/,
      ],
      ['[[functions]]\nname = "x"\nentry = "a.ts"\nrate_limit = "3/hour"\n', /rate_limit expects/],
    ];
    for (const [toml, message] of cases) {
      const dir = project(toml, { "a.ts": answer("a") });
      const res = await runCli(["deploy"], env(), undefined, dir);
      expect(res.code, toml).toBe(1);
      expect(res.stderr, toml).toMatch(message);
      expect(res.stderr, toml).toContain("hearth.toml");
    }
    expect((await cluster.hearth.list()).map((f) => f.name)).not.toContain("x");
  });

  it("deploy --watch redeploys a changed function within a second of the save, and only that one", async () => {
    const dir = project(
      '[[functions]]\nname = "watched"\nentry = "w.ts"\n\n[[functions]]\nname = "bystander"\nentry = "by.ts"\n',
      { "w.ts": answer("one"), "by.ts": answer("by") },
    );
    const child: ChildProcess = spawn(process.execPath, [CLI, "deploy", "--watch"], {
      cwd: dir,
      env: { ...process.env, ...env() },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    child.stdout?.on("data", (d: Buffer) => {
      stdout += d;
    });
    try {
      await pollUntil(
        () => stdout,
        (out) => out.includes("Watching"),
        "the watcher to start",
      );
      expect((await cluster.hearth.invoke("watched")).text()).toBe("one");
      const bystanderVersion = (await cluster.hearth.get("bystander")).versionId;
      const savedAt = Date.now();
      writeFileSync(join(dir, "w.ts"), answer("two"));
      await pollUntil(
        async () => (await cluster.hearth.invoke("watched")).text(),
        (text) => text === "two",
        "the new code",
      );
      const latencyMs = Date.now() - savedAt;
      expect(latencyMs).toBeLessThan(5_000); // the target is 1 s; the bound leaves room for a loaded machine
      await pollUntil(
        () => stdout,
        (out) => /done \d+ ms after the save/.test(out),
        "the redeploy's report",
      );
      expect(stdout).toMatch(/↻ w\.ts changed/);
      expect((await cluster.hearth.get("bystander")).versionId).toBe(bystanderVersion);
    } finally {
      // Unless it already ended (a crash), whose exit event has come and gone.
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGINT");
        await exited;
      }
    }
    expect(child.exitCode).toBe(0);
  });
});

describe("hearth dev --watch", () => {
  it("deploys the project's functions once the cluster is up, and again on every save", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "hearth.toml"), '[[functions]]\nname = "dev-watched"\nentry = "w.ts"\n');
    writeFileSync(join(dir, "w.ts"), `export default { fetch: () => new Response("one") };`);
    const dev = await startDevCluster({}, { args: ["--watch"], cwd: dir });
    try {
      const hearth = new HearthClient({ url: dev.url, token: dev.token });
      const served = async () => (await hearth.invoke("dev-watched")).text();
      await pollUntil(served, (text) => text === "one", "the deploy at start");
      const first = (await hearth.get("dev-watched")).versionId;
      writeFileSync(join(dir, "w.ts"), `export default { fetch: () => new Response("two") };`);
      await pollUntil(served, (text) => text === "two", "the redeploy after the save");
      expect((await hearth.get("dev-watched")).versionId).toBeGreaterThan(first);
    } finally {
      await dev.stop();
    }
  });
});
