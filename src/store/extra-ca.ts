/**
 * NODE_EXTRA_CA_CERTS for a PostgreSQL TLS connection, when node did not
 * load it. bin/pki.js (run as a program) starts node without the variable,
 * to spare every command the ~40 ms node spends reading that bundle before
 * any JavaScript runs, and hands its value on in a global. The one TLS
 * client pki has is its PostgreSQL store: there, the trusted roots are
 * what node would have had, its bundled roots and the file's certificates.
 * An sslrootcert= in the URL (pg's `ca`) is left as it is: it replaces
 * the default roots in either case.
 */
import * as fs from "node:fs";
import { createRequire } from "node:module";

// node:tls (~5 ms to load) only for a TLS connection: pg itself loads it late, when it starts TLS
const tlsModule = (): typeof import("node:tls") => createRequire(import.meta.url)("node:tls") as typeof import("node:tls");

const KEY = Symbol.for("pki.extra-ca-certs");

/** The NODE_EXTRA_CA_CERTS file that node was started without, if any (bin/pki.js). */
function deferredExtraCaFile(): string | undefined {
  const f = (globalThis as { [KEY]?: unknown })[KEY];
  return typeof f === "string" && f !== "" ? f : undefined;
}

let roots: string[] | null | undefined;

/**
 * The roots a TLS client would trust had node loaded the file: undefined when
 * node did (or there is no file). A file that cannot be read is skipped with
 * a warning, as node does at start.
 */
function deferredExtraRoots(): string[] | undefined {
  const file = deferredExtraCaFile();
  if (file === undefined) return undefined;
  if (roots === undefined) {
    try {
      roots = [...tlsModule().rootCertificates, fs.readFileSync(file, "utf8")];
    } catch (e) {
      process.stderr.write(`pki: warning: ignoring NODE_EXTRA_CA_CERTS ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
      roots = null;
    }
  }
  return roots ?? undefined;
}

/**
 * A pg client's TLS settings with those roots added (pg keeps them on the
 * client, its connection parameters and its connection): `ssl: true`
 * becomes `{ ca }`, an object without `ca` gets one; no TLS, or a `ca` of
 * the URL's own, is left alone.
 */
export function trustDeferredRoots(client: unknown): void {
  if (deferredExtraCaFile() === undefined) return;
  const c = client as { ssl?: unknown; connectionParameters?: { ssl?: unknown }; connection?: { ssl?: unknown } };
  let ssl = c.connectionParameters?.ssl;
  if (ssl === true) ssl = {};
  if (ssl === null || typeof ssl !== "object" || (ssl as { ca?: unknown }).ca !== undefined) return;
  // read (node's roots, the file) only for a connection that uses them
  const ca = deferredExtraRoots();
  if (ca === undefined) return;
  (ssl as { ca?: unknown }).ca = ca;
  if (c.connectionParameters) c.connectionParameters.ssl = ssl;
  c.ssl = ssl;
  if (c.connection) c.connection.ssl = ssl;
}
