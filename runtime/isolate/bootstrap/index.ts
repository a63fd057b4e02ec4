/**
 * The bootstrap: runs first in every function isolate and installs the web API. Bundled by esbuild
 * into one classic script (see bootstrap-source.ts), usually evaluated once into a V8 snapshot. Nothing
 * here can reach Node: the only ways out are the host callbacks connected in host.ts, which copy
 * their arguments.
 */

import lazyShared from "hearth:lazy-shared";
import { AbortController, AbortSignal } from "./abort.ts";
import { Blob, File } from "./blob.ts";
import { ConsoleBuffer, createConsole } from "./console.ts";
import { CryptoKey, crypto, cryptoDone } from "./crypto/index.ts";
import { createDispatcher, InvocationTracker, thrownError } from "./dispatch.ts";
import { createFetch, fetchDone } from "./fetch.ts";
import { FormData } from "./form-data.ts";
import { defineGlobal, defineGlobals } from "./globals.ts";
import { connectHost, host } from "./host.ts";
import { shareWithLazyParts } from "./lazy.ts";
import { Performance, performance, resetTimeOrigin } from "./performance.ts";
import { Request } from "./request.ts";
import { Response } from "./response.ts";
import { OutgoingBodies } from "./response-stream.ts";
import { clearInterval, clearTimeout, fireTimers, setInterval, setTimeout } from "./timers.ts";
import { limitWasmMemory } from "./wasm.ts";

type Global = Record<string, unknown>;
const g = globalThis as unknown as Global;

shareWithLazyParts(lazyShared);
const consoleBuffer = new ConsoleBuffer(host);
const tracker = new InvocationTracker(consoleBuffer);
const outgoingBodies = new OutgoingBodies(thrownError);

defineGlobals({
  Request,
  Response,
  Blob,
  File,
  FormData,
  AbortController,
  AbortSignal,
  crypto,
  CryptoKey,
  performance,
  Performance,
  setTimeout,
  clearTimeout,
  setInterval,
  clearInterval,
  console: createConsole(consoleBuffer, () => tracker.current()),
  fetch: createFetch(() => tracker.chargeFetch()),
});

/**
 * Entry points for the host, which takes a Reference to each and then deletes the global, so
 * function code cannot reach or replace them.
 */
defineGlobal("__hearth_connect", (memoryMb: number) => {
  connectHost();
  resetTimeOrigin();
  limitWasmMemory(memoryMb * 1024 * 1024);
});
defineGlobal("__hearth_timer_fire", fireTimers);
defineGlobal("__hearth_fetch_done", fetchDone);
defineGlobal("__hearth_crypto_done", cryptoDone);
defineGlobal("__hearth_body_pull", (id: number, cancel: boolean) => outgoingBodies.pull(id, cancel));
defineGlobal("__hearth_init", (envJson: string, maxBodyBytes: number, maxStreamedBodyBytes: number) => {
  const module = g.__hearth_module;
  g.__hearth_module = undefined; // a top-level `var`, so not deletable
  const env = Object.freeze(JSON.parse(envJson) as Record<string, string>);
  return createDispatcher(module, env, tracker, { maxBodyBytes, maxStreamedBodyBytes }, outgoingBodies);
});
