import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { type Command, Option } from "commander";
import { PROJECT_FILE } from "../project.ts";
import { action } from "./args.ts";
import { UsageError } from "./output.ts";
import { TEMPLATES, TSCONFIG } from "./templates.ts";

export function registerInitCommand(program: Command): void {
  program
    .command("init")
    .description("Create a ready-to-deploy project: hearth.toml, src/index.ts, tsconfig.json and package.json")
    .argument("[dir]", "where to create it (default: here)", ".")
    .addOption(
      new Option("-t, --template <name>", "what the function does").choices(Object.keys(TEMPLATES)).default("hello"),
    )
    .option("--force", "overwrite files the template writes")
    .addHelpText(
      "after",
      `\nTemplates:\n${Object.entries(TEMPLATES)
        .map(([name, t]) => `  ${name.padEnd(6)} ${t.summary}`)
        .join(
          "\n",
        )}\n\nExample:\n  hearth init my-api --template hono && cd my-api && npm install && npx hearth deploy`,
    )
    .action(
      action<{ template: string; force?: boolean }, [string]>(async ({ opts, out }, dir) => {
        const template = TEMPLATES[opts.template];
        if (!template) throw new UsageError(`unknown template ${opts.template}`);
        const root = resolve(dir);
        const files: Record<string, string> = { ...template.files, "tsconfig.json": TSCONFIG };
        const clashes = Object.keys(files).filter((f) => existsSync(join(root, f)));
        if (clashes.length > 0 && !opts.force)
          throw new UsageError(`${clashes.join(", ")} already exist in ${root}; --force overwrites them`);
        for (const [file, content] of Object.entries(files)) {
          mkdirSync(dirname(join(root, file)), { recursive: true });
          writeFileSync(join(root, file), content);
        }
        writePackageJson(root, template.dependencies);
        const where = relative(process.cwd(), root);
        out.result({ dir: root, template: opts.template, files: [...Object.keys(files), "package.json"] });
        out.info(`✔ Created a ${opts.template} project in ${where || "."} (${PROJECT_FILE}, src/index.ts)`);
        out.info("Next:");
        if (where) out.info(`  cd ${where}`);
        if (Object.keys(template.dependencies).length > 0) out.info("  npm install");
        out.info("  npx hearth deploy          # deploy what hearth.toml declares");
        out.info("  npx hearth deploy --watch  # and again on every save");
        return 0;
      }),
    );
}

/** Adds the template's dependencies and two scripts to package.json, creating it when there is none. */
function writePackageJson(root: string, dependencies: Readonly<Record<string, string>>): void {
  const path = join(root, "package.json");
  const pkg = existsSync(path)
    ? (JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>)
    : {
        name: basename(root)
          .toLowerCase()
          .replace(/[^a-z0-9-]+/g, "-"),
        private: true,
        type: "module",
      };
  const scripts = { deploy: "hearth deploy", watch: "hearth deploy --watch", ...(pkg.scripts as object) };
  const deps = { ...dependencies, ...(pkg.dependencies as object) };
  const next = { ...pkg, scripts, ...(Object.keys(deps).length > 0 ? { dependencies: deps } : {}) };
  writeFileSync(path, `${JSON.stringify(next, null, 2)}\n`);
}
