import { readdirSync, readFileSync } from "node:fs";

/** ppid of a process from /proc/<pid>/stat (the field after the parenthesised command name). */
function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return null;
  }
}

/** Direct children of a process, from /proc (Linux). */
export function childPids(pid: number): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((candidate) => parentOf(candidate) === pid);
}

/** A process and all its descendants. */
export function processTree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...childPids(all[i] as number));
  return all;
}

/** User + system CPU time of processes so far, in microseconds (from /proc/<pid>/stat, Linux). */
export function cpuMicros(pids: readonly number[]): number {
  const ticksPerSecond = 100; // USER_HZ is 100 on Linux x86_64
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
    } catch {}
  }
  return (ticks / ticksPerSecond) * 1e6;
}
