/**
 * The life of `pki serve` around its HTTP server: the --ready-file that tells
 * a supervisor (or a test) where it listens, binding the address with a
 * one-line error, and stopping on SIGTERM or SIGINT without cutting requests
 * in flight.
 */
import * as fs from "node:fs";
import type * as http from "node:http";
import * as path from "node:path";
import { PkiError, usage } from "../core/errors.js";
import { confineOutput, outsideRel, writeOutputs } from "../store/output.js";
import type { CaStore } from "../store/store.js";

/** --ready-file, checked before anything starts: outside the CA directory, a regular file or a new one. Its absolute path. */
export function readyFilePath(store: CaStore, p: string | undefined): string | undefined {
  if (p === undefined) return undefined;
  if (p.trim() === "") throw usage("--ready-file needs a file name");
  confineOutput(store, p, { label: "--ready-file" }); // never a CA file, a device, FIFO or symlink (store/output.ts)
  const abs = path.resolve(p);
  const rel = store.kind === "dir" ? path.relative(store.location, abs) : "..";
  if (!outsideRel(rel)) throw new PkiError("BAD_INPUT", `--ready-file ${p} is inside the CA directory: choose a path outside ${store.location}`);
  try {
    const st = fs.lstatSync(abs);
    if (!st.isFile()) throw new PkiError("BAD_INPUT", `--ready-file ${p} exists and is not a regular file`);
  } catch (e) {
    if (e instanceof PkiError) throw e;
  }
  return abs;
}

/** The ready file, once the server listens: one JSON line (pid, url), written whole through the checked writer. */
export function writeReadyFile(store: CaStore, file: string, content: { pid: number; url: string }): void {
  writeOutputs(store, [{ path: file, data: JSON.stringify(content) + "\n", mode: 0o644 }], { label: "--ready-file" });
}

export function removeReadyFile(file: string): void {
  fs.rmSync(file, { force: true });
}

/** Bind host:port; a failure is one IO_ERROR line saying why. */
export function listenOn(server: http.Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(new PkiError("IO_ERROR", `cannot listen on ${host}:${port}: ${e.code === "EADDRINUSE" ? "the address is in use" : e.code === "EACCES" ? "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)" : e.code}`)),
    );
    server.listen(port, host, () => resolve());
  });
}

/** SIGTERM or SIGINT, whichever comes first (the handlers are in place once this returns). */
export function stopSignal(): Promise<NodeJS.Signals> {
  return new Promise<NodeJS.Signals>((resolve) => {
    const on = (s: NodeJS.Signals) => resolve(s);
    process.once("SIGTERM", on);
    process.once("SIGINT", on);
  });
}

/** Stop accepting, let requests in flight finish (they take milliseconds), then drop idle sockets; at most 2 s. */
export function stopServer(server: http.Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => {
      server.closeAllConnections();
      resolve();
    }, 2000).unref();
  });
}
