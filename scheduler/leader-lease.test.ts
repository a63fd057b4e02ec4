import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BUCKETS, connectNats, EpochFence } from "../protocol/index.ts";
import { type NatsServer, startNatsServer } from "../sdk/index.ts";
import { LeaderLease, type LeaderLeaseOptions, type LeadershipChange } from "./leader-lease.ts";

/**
 * Leader election against a real nats-server (one per file), one NATS connection per scheduler, each
 * test on its own lease key.
 *
 * Measured on nats-server 2.9.10 (this machine): a key is gone, and `create` on it succeeds, 0.3–8 ms
 * after max_age (median ≈ 2 ms; 1 s and 3 s buckets, a lone key or one renewed every ttl/3, 41
 * samples, the probe at the end of this file included), and never before. Failover after a leader
 * stops is therefore ttl − (time since its last renewal) + EXPIRY_SLACK_MS (25 ms); worst case, a
 * stop right after a renewal, ≈ ttl + 25 ms: 3.03 s with the default ttl of 3 s (budget 5 s). Here,
 * with ttl 1.5 s and renewEvery 0.5 s: a SIGSTOPped leader was replaced 1,505 ms after the stop (5
 * runs, 1,504.6–1,505.7), a leader that closed was replaced after 2.7–4.2 ms (the follower watches
 * the key and campaigns on the delete marker), and a failed compare-and-set ended leadership at the
 * next renewal, 498–500 ms after the foreign write. Stream sequences, hence epochs, survived both a
 * restart and a kill -9 of nats-server (6 after 5); only deleting the bucket would reset them.
 */

const TTL_MS = 1_500;
const RENEW_MS = 500;

let nats: NatsServer;
const cleanups: Array<() => Promise<unknown> | unknown> = [];
let keys = 0;

beforeAll(async () => {
  nats = await startNatsServer({});
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await nats?.stop();
});

/** Each test leases its own key: tests share the server but never a leader. */
const freshKey = () => `test${++keys}`;

async function connect(name: string): Promise<NatsConnection> {
  const nc = await connectNats(nats.url, name);
  cleanups.push(() => nc.close());
  return nc;
}

/** A scheduler's lease on a connection of its own, closed after the test. */
async function openLease(id: string, key: string, extra: Partial<LeaderLeaseOptions> = {}): Promise<LeaderLease> {
  const nc = await connect(id);
  const lease = await LeaderLease.open({ nc, id, key, ttlMs: TTL_MS, renewEveryMs: RENEW_MS, ...extra });
  cleanups.push(() => lease.close());
  return lease;
}

/** Resolves at the lease's next change to `leader`, with the time it happened. */
function nextChange(lease: LeaderLease, leader: boolean, timeoutMs: number): Promise<{ epoch: number; at: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`no change to leader=${leader} within ${timeoutMs} ms`));
    }, timeoutMs);
    const stop = lease.onChange((change) => {
      if (change.leader !== leader) return;
      clearTimeout(timer);
      stop();
      resolve({ epoch: change.epoch, at: performance.now() });
    });
  });
}

async function waitFor<T>(probe: () => T | null | undefined | false, timeoutMs: number, what: string): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("LeaderLease", () => {
  it("elects exactly one of two schedulers, which keeps leading across renewals", async () => {
    const key = freshKey();
    const [a, b] = await Promise.all([openLease("a", key), openLease("b", key)]);
    const changes: Array<LeadershipChange & { id: string }> = [];
    a.onChange((change) => changes.push({ id: "a", ...change }));
    b.onChange((change) => changes.push({ id: "b", ...change }));
    a.start();
    b.start();

    await waitFor(() => changes.length > 0 && a.current() && b.current(), 2_000, "a leader both agree on");
    const leader = a.isLeader ? a : b;
    expect([a.isLeader, b.isLeader].filter(Boolean)).toHaveLength(1);
    expect(a.current()).toEqual(b.current());
    expect(a.current()).toMatchObject({ leaderId: leader === a ? "a" : "b", epoch: leader.epoch });

    // Two ttl later the lease would long have expired without renewals.
    const epoch = leader.epoch;
    await sleep(2 * TTL_MS);
    expect(leader.isLeader).toBe(true);
    expect(leader.epoch).toBe(epoch);
    expect(changes).toEqual([{ id: leader === a ? "a" : "b", leader: true, epoch }]);
  });

  it("hands over within a few ms when the leader closes, with a higher epoch", async () => {
    const key = freshKey();
    const a = await openLease("a", key);
    a.start();
    const { epoch: oldEpoch } = await nextChange(a, true, 2_000);
    const b = await openLease("b", key);
    b.start();
    await waitFor(() => b.current()?.leaderId === "a", 2_000, "b to see a lead");

    const gained = nextChange(b, true, TTL_MS);
    const closedAt = performance.now();
    await a.close();
    const { epoch, at } = await gained;
    expect(at - closedAt).toBeLessThan(TTL_MS);
    expect(epoch).toBeGreaterThan(oldEpoch);
    expect(b.current()).toMatchObject({ leaderId: "b", epoch });
    await a.close(); // idempotent
  });

  it("replaces a SIGSTOPped leader within ttl + renewEvery; resumed, the old leader stays deposed", async () => {
    const key = freshKey();
    const old = spawnLeaseProcess("old", key);
    const { epoch: oldEpoch } = await waitFor(
      () => old.find("change", (m) => m.leader === true),
      10_000,
      "old to lead",
    );
    const b = await openLease("new", key);
    const bChanges: LeadershipChange[] = [];
    b.onChange((change) => bChanges.push(change));
    b.start();
    await waitFor(() => b.current()?.leaderId === "old", 2_000, "new to see old lead");

    const gained = nextChange(b, true, TTL_MS + RENEW_MS + 1_000);
    const stoppedAt = performance.now();
    old.signal("SIGSTOP");
    const { epoch, at } = await gained;
    expect(at - stoppedAt).toBeLessThanOrEqual(TTL_MS + RENEW_MS);
    expect(epoch).toBeGreaterThan(oldEpoch);

    old.signal("SIGCONT");
    await waitFor(() => old.find("change", (m) => m.leader === false), 2_000, "old to see it lost");
    old.send("status");
    const status = await waitFor(() => old.find("status", () => true), 2_000, "old's status");
    expect(status).toMatchObject({ isLeader: false, epoch: 0 });

    // The old leader's release (delete at its last revision) and its campaigns must all fail.
    await sleep(2 * TTL_MS);
    expect(old.messages.filter((m) => m.type === "change")).toEqual([
      { type: "change", leader: true, epoch: oldEpoch },
      { type: "change", leader: false, epoch: oldEpoch },
    ]);
    expect(b.isLeader).toBe(true);
    expect(b.current()).toMatchObject({ leaderId: "new", epoch });
    expect(bChanges).toEqual([{ leader: true, epoch }]);
  });

  it("loses at once when a renewal's compare-and-set fails, and wins back only with a higher epoch", async () => {
    const key = freshKey();
    const a = await openLease("a", key);
    a.start();
    const { epoch: oldEpoch } = await nextChange(a, true, 2_000);
    // What a renewal that timed out but was applied leaves behind: our own value at a newer revision.
    const kv = await new Kvm(await connect("other")).create(BUCKETS.leader, { history: 1, ttl: TTL_MS });
    const lost = nextChange(a, false, TTL_MS);
    const writtenAt = performance.now();
    const foreignRevision = await kv.put(key, JSON.stringify({ id: "a", since: Date.now(), epoch: oldEpoch }));

    expect((await lost).at - writtenAt).toBeLessThan(RENEW_MS + 100); // the clock alone would take 0.9 ttl
    expect(a.isLeader).toBe(false);
    const { epoch } = await nextChange(a, true, TTL_MS + RENEW_MS + 500);
    expect(epoch).toBeGreaterThan(foreignRevision);
  });

  it("turns isLeader false by the clock alone, before any timer fires, then notifies", async () => {
    const key = freshKey();
    let pausedMs = 0;
    const a = await openLease("a", key, { now: () => Date.now() + pausedMs });
    a.start();
    const { epoch: oldEpoch } = await nextChange(a, true, 2_000);
    const changes: LeadershipChange[] = [];
    a.onChange((change) => changes.push(change));
    expect(a.isLeader).toBe(true);
    expect(a.epoch).toBe(oldEpoch);

    pausedMs = TTL_MS; // as if the process had been stopped for a whole ttl
    expect(a.isLeader).toBe(false);
    expect(a.epoch).toBe(0);
    expect(changes).toEqual([]); // nothing ran: no timer, no flag

    // The lease then notices by itself, frees its key (still its own on the server) and wins anew.
    await waitFor(() => changes.length >= 2, TTL_MS, "loss and a new leadership");
    expect(changes[0]).toEqual({ leader: false, epoch: oldEpoch });
    expect(changes[1]?.leader).toBe(true);
    expect(changes[1]?.epoch).toBeGreaterThan(oldEpoch);
  });

  it("refuses options that would make the lease unsafe", async () => {
    const nc = await connect("options");
    const key = freshKey();
    await expect(LeaderLease.open({ nc, id: "a", ttlMs: 50 })).rejects.toThrow(/ttlMs/);
    await expect(LeaderLease.open({ nc, id: "a", ttlMs: 1_000, renewEveryMs: 600 })).rejects.toThrow(/renewEveryMs/);
    await expect(LeaderLease.open({ nc, id: "", ttlMs: TTL_MS })).rejects.toThrow(/id/);
    await openLease("a", key); // the bucket exists with max_age = TTL_MS
    await expect(LeaderLease.open({ nc, id: "b", key, ttlMs: 2_000 })).rejects.toThrow(/max_age 1500 ms/);
  });
});

describe("EpochFence", () => {
  it("admits the newest epoch and rejects older ones", () => {
    const fence = new EpochFence();
    expect(fence.admit(5)).toBe(true);
    expect(fence.admit(5)).toBe(true); // the same leader's next command
    expect(fence.admit(4)).toBe(false);
    expect(fence.admit(9)).toBe(true);
    expect(fence.admit(5)).toBe(false);
    expect(fence.admit(Number.NaN)).toBe(false);
    expect(fence.highest).toBe(9);
  });
});

describe("nats-server max_age expiry (the failover floor)", () => {
  it("removes a key within 100 ms after max_age, never before", async () => {
    const ttlMs = 1_000;
    const kv = await new Kvm(await connect("probe")).create("lease_expiry_probe", { history: 1, ttl: ttlMs });
    const lagsMs = await Promise.all(
      [0, 1, 2, 3, 4].map(async (i) => {
        await sleep(i * 97); // staggered, so the server's expiry timer must re-arm between keys
        const key = `k${i}`;
        const sentAt = performance.now();
        await kv.create(key, "held");
        await sleep(ttlMs - 20);
        for (;;) {
          const attemptAt = performance.now();
          const won = await kv.create(key, "next").then(
            () => true,
            () => false,
          );
          if (won) {
            expect(performance.now() - sentAt).toBeGreaterThanOrEqual(ttlMs);
            return attemptAt - sentAt - ttlMs;
          }
          await sleep(2);
        }
      }),
    );
    expect(Math.max(...lagsMs)).toBeLessThan(100);
  });
});

type ChildMessage = { type: string; [field: string]: unknown };

/**
 * A scheduler in a process of its own, so the test can SIGSTOP it: a real pause stops its timers, its
 * watch and its in-flight requests alike. It prints its leadership changes and, on any stdin line,
 * its status, as JSON lines.
 */
function spawnLeaseProcess(id: string, key: string) {
  const script = `
    const { connectNats } = await import(process.env.CONNECT_MODULE);
    const { LeaderLease } = await import(process.env.LEASE_MODULE);
    const say = (message) => process.stdout.write(JSON.stringify(message) + "\\n");
    const nc = await connectNats(process.env.NATS_URL, process.env.LEASE_ID);
    const lease = await LeaderLease.open({
      nc, id: process.env.LEASE_ID, key: process.env.LEASE_KEY,
      ttlMs: Number(process.env.TTL_MS), renewEveryMs: Number(process.env.RENEW_MS),
    });
    lease.onChange((change) => say({ type: "change", ...change }));
    process.stdin.on("data", () => say({ type: "status", isLeader: lease.isLeader, epoch: lease.epoch }));
    process.stdin.on("end", async () => { await lease.close(); await nc.close(); });
    lease.start();
  `;
  const child: ChildProcess = spawn(process.execPath, ["--input-type=module", "-e", script], {
    stdio: ["pipe", "pipe", "inherit"],
    env: {
      ...process.env,
      CONNECT_MODULE: new URL("../protocol/connect.ts", import.meta.url).href,
      LEASE_MODULE: new URL("./leader-lease.ts", import.meta.url).href,
      NATS_URL: nats.url,
      LEASE_ID: id,
      LEASE_KEY: key,
      TTL_MS: String(TTL_MS),
      RENEW_MS: String(RENEW_MS),
    },
  });
  const messages: ChildMessage[] = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
    messages.push(JSON.parse(line) as ChildMessage);
  });
  cleanups.push(() => {
    // SIGKILL also ends a stopped process; a test that failed midway leaves nothing behind.
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return {
    messages,
    find: (type: string, match: (m: ChildMessage) => boolean) =>
      messages.find((m) => m.type === type && match(m)) as (ChildMessage & { epoch: number }) | undefined,
    signal: (signal: NodeJS.Signals) => child.kill(signal),
    send: (line: string) => child.stdin?.write(`${line}\n`),
  };
}
