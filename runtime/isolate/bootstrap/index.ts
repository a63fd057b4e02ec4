/**
 * The bootstrap: runs first in every function isolate and installs the web API. Bundled by esbuild
 * into one classic script (see bootstrap-source.ts). Nothing here can reach Node: the only ways out
 * are the host callbacks captured below, which copy their arguments.
 */

import { createConsole, type HostLog } from "./console.ts";
import { createDispatcher, InvocationTracker } from "./dispatch.ts";
import { defineGlobal } from "./globals.ts";
import { Request } from "./request.ts";
import { Response } from "./response.ts";

type Global = Record<string, unknown>;
const g = globalThis as unknown as Global;

const hostLog = g.__hearth_host_log as HostLog;
delete g.__hearth_host_log;

const tracker = new InvocationTracker();

defineGlobal("Request", Request);
defineGlobal("Response", Response);
defineGlobal(
  "console",
  createConsole(hostLog, () => tracker.current()),
);

/**
 * Called once by the host after the user's bundle ran: binds its default export and returns the
 * per-request dispatcher. The host holds the dispatcher by Reference, so user code cannot swap it.
 */
defineGlobal("__hearth_init", (envJson: string) => {
  const module = g.__hearth_module;
  g.__hearth_module = undefined; // a top-level `var`, so not deletable
  const env = Object.freeze(JSON.parse(envJson) as Record<string, string>);
  return createDispatcher(module, env, tracker);
});
