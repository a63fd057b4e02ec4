import { type FSWatcher, watch } from "node:fs";
import { dirname, relative, resolve, sep } from "node:path";
import type { ProjectFunction } from "../project.ts";
import type { Output } from "./output.ts";

export interface WatchOptions {
  /** What is deployed now. */
  readonly functions: readonly ProjectFunction[];
  /** The hearth.toml to follow (its change reloads the functions), or null for a lone entry file. */
  readonly projectFile: string | null;
  /** Reads the functions again after hearth.toml changed. */
  reload(): ProjectFunction[];
  /** Bundles and deploys one function, skipping a bundle equal to the last one deployed. */
  deploy(fn: ProjectFunction): Promise<unknown>;
  /** The code last deployed per function (shared with `deploy`); cleared when hearth.toml changes. */
  readonly lastCode: Map<string, string>;
  readonly out: Output;
}

/** Saves arrive as bursts of events (write, chmod, an editor's rename): one redeploy per burst. */
const SETTLE_MS = 60;
/** node_modules, and anything hidden (.git, .hearth, editors' swap files): not the project's sources. */
const isIgnored = (part: string) => part === "node_modules" || part.startsWith(".");

/**
 * Redeploys on every save until Ctrl-C: each burst of changes rebuilds every function and uploads
 * those whose bundle changed (a function importing the changed file is one of them); a change to
 * hearth.toml reloads it first. Watching is node:fs's recursive watch (inotify on Linux): a save is
 * seen at once, where esbuild's own watch polls and may take up to 2 s to notice a first change.
 */
export async function watchProject(options: WatchOptions): Promise<number> {
  const { out } = options;
  let functions = [...options.functions];
  const roots = watchRoots(options.projectFile, functions);
  const changed = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | null = null;

  const redeploy = async (): Promise<void> => {
    const files = [...changed];
    changed.clear();
    const startedAt = performance.now();
    out.info(`↻ ${files.map((f) => relative(process.cwd(), f) || f).join(", ")} changed`);
    if (options.projectFile && files.includes(options.projectFile)) {
      try {
        functions = options.reload();
        options.lastCode.clear(); // settings may have changed: deploy every function again
      } catch (err) {
        out.error(err);
        return;
      }
    }
    for (const fn of functions) {
      try {
        await options.deploy(fn);
      } catch (err) {
        out.error(err);
      }
    }
    out.info(`  done ${Math.round(performance.now() - startedAt)} ms after the save; watching for changes…`);
  };

  const schedule = (file: string): void => {
    changed.add(file);
    clearTimeout(timer);
    timer = setTimeout(() => {
      // One run at a time; changes made during a run start the next one when it ends.
      running = (running ?? Promise.resolve()).then(redeploy).finally(() => {
        running = null;
      });
    }, SETTLE_MS);
  };

  const watchers: FSWatcher[] = roots.map((root) =>
    watch(root, { recursive: true }, (_event, name) => {
      if (!name) return;
      const path = resolve(root, name.toString());
      if (name.toString().split(sep).some(isIgnored)) return;
      schedule(path);
    }),
  );
  out.info(`Watching ${roots.map((r) => relative(process.cwd(), r) || ".").join(", ")} for changes (Ctrl-C stops)…`);
  // Not Promise.withResolvers: the hearth-sdk package runs on Node 20, which lacks it.
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  clearTimeout(timer);
  for (const w of watchers) w.close();
  await running;
  return 0;
}

/** The project's folder, or each lone entry's folder; nested folders are covered by their parent. */
function watchRoots(projectFile: string | null, functions: readonly ProjectFunction[]): string[] {
  const dirs = projectFile ? [dirname(projectFile)] : [...new Set(functions.map((f) => dirname(f.entry)))];
  return dirs.filter((d) => !dirs.some((other) => other !== d && d.startsWith(other + sep)));
}
