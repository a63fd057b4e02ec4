import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import type { Command } from "commander";
import { type BackupManifest, type BucketCount, readBackup } from "../../protocol/index.ts";
import { action, client } from "./args.ts";
import { EXIT, type Output } from "./output.ts";

/** Reads an archive through, checking all of it; its manifest and counts, or the error naming the fault. */
async function checkArchive(file: string): Promise<{ manifest: BackupManifest; buckets: readonly BucketCount[] }> {
  let manifest: BackupManifest | null = null;
  let buckets: readonly BucketCount[] = [];
  for await (const item of readBackup(createReadStream(file))) {
    if (item.t === "manifest") manifest = item.manifest;
    if (item.t === "end") buckets = item.end.buckets;
  }
  return { manifest: manifest as BackupManifest, buckets };
}

function printCounts(out: Output, buckets: readonly BucketCount[]): void {
  const width = Math.max(6, ...buckets.map((b) => b.name.length));
  out.info(`${"BUCKET".padEnd(width)}  ENTRIES  BYTES`);
  for (const b of buckets) out.info(`${b.name.padEnd(width)}  ${String(b.entries).padEnd(7)}  ${b.bytes}`);
}

async function backup(out: Output, file: string): Promise<number> {
  // Written beside the target and renamed once checked: a failed backup never leaves a file that looks like one.
  const partial = `${file}.partial`;
  try {
    await pipeline(await client().backup(), createWriteStream(partial, { mode: 0o600 }));
    const { manifest, buckets } = await checkArchive(partial);
    await rename(partial, file);
    out.result({ file, createdAt: manifest.createdAt, hearthVersion: manifest.hearthVersion, buckets });
    out.info(`✔ Backup written to ${file} (${manifest.createdAt})`);
    printCounts(out, buckets);
    out.info(
      "Secrets in it are sealed with HEARTH_SECRETS_KEY: keep that key too (apart from the file), or they cannot be restored.",
    );
    return EXIT.ok;
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
}

async function restore(out: Output, file: string, force: boolean): Promise<number> {
  // Checked here first (the gateway checks again before it writes): a bad file fails before any upload.
  const { manifest } = await checkArchive(file);
  out.info(`Restoring the backup of ${manifest.createdAt} (Hearth ${manifest.hearthVersion})...`);
  const report = await client().restore(createReadStream(file), { force });
  out.result(report);
  out.info("✔ Restored");
  printCounts(out, report.buckets);
  for (const warning of report.warnings) out.info(`! ${warning}`);
  return EXIT.ok;
}

/** `hearth backup <file>` and `hearth restore <file>`: docs/backup.md. */
export function registerBackupCommands(program: Command): void {
  program
    .command("backup")
    .description(
      "Write all control-plane state (functions, versions, sealed secrets, triggers, tokens, namespaces, bundles) to a file",
    )
    .argument("<file>", "where to write the backup")
    .action(action(async ({ out }, file: string) => backup(out, file)));
  program
    .command("restore")
    .description("Bring a backup back into an empty cluster")
    .argument("<file>", "the backup to restore")
    .option("--force", "restore into a cluster with functions, overwriting what the backup holds")
    .action(
      action<{ force?: boolean }, [string]>(async ({ opts, out }, file) => restore(out, file, opts.force === true)),
    );
}
