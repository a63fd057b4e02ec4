/**
 * How the CLI reaches the server (server.ts). From the monorepo's sources it is a sibling module; in
 * the published `hearth-sdk` package the build rewrites SERVER_MODULE's import to the separate
 * `hearth-server` package, which a project installs only when it runs a local cluster.
 */

/** What loadServer() returns: the server module's exports. */
export type HearthServer = typeof import("./server.ts");

/** The server is not installed, or cannot run on this Node.js. */
export class ServerUnavailableError extends Error {
  readonly code = "ERR_SERVER_UNAVAILABLE";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ServerUnavailableError";
  }
}

/** isolated-vm 7 and the type stripping the dev tooling relies on need Node.js 24. */
const SERVER_NODE_MAJOR = 24;

/**
 * Loads the server for `hearth <command>`.
 *
 * @throws ServerUnavailableError naming the command, the package to install and the Node.js it needs
 */
export async function loadServer(
  command: string,
  nodeVersion: string = process.versions.node,
  importServer: () => Promise<HearthServer> = () => import("./server.ts"),
): Promise<HearthServer> {
  const need = `hearth ${command} needs the server: npm i -D hearth-server (Node.js ${SERVER_NODE_MAJOR} or later)`;
  const major = Number(nodeVersion.split(".")[0]);
  if (major < SERVER_NODE_MAJOR) throw new ServerUnavailableError(`${need}; this is Node.js ${nodeVersion}.`);
  try {
    return await importServer();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const missing = code === "ERR_MODULE_NOT_FOUND" && String((err as Error).message).includes("hearth-server");
    if (!missing) throw err;
    throw new ServerUnavailableError(`${need}; it is not installed.`, { cause: err });
  }
}
