/**
 * pki serve: the revocation status server of the CA (OCSP, CRL, CA
 * certificate, health) until SIGTERM or SIGINT. The parts live in
 * src/serve/ (state: what is answered, kept fresh; responder: the delegated
 * signing certificate; server: HTTP) and src/core/ocsp.ts (the protocol).
 */
import { confineOutput } from "../store/output.js";
import * as fs from "node:fs";
import * as path from "node:path";
import { PkiError, usage } from "../core/errors.js";
import { caPassphrase, type Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import type { CaStore } from "../store/store.js";
import { noCa } from "../ca/authority.js";
import { intOption } from "./options.js";
import { ServeState } from "../serve/state.js";
import { issueResponder, needsRenewal } from "../serve/responder.js";
import { addressOf, createServer, OcspService } from "../serve/server.js";

interface Opts {
  listen?: string;
  nextUpdate?: string;
  logJson?: boolean;
  readyFile?: string;
}

export function parseListen(v: string | undefined): { host: string; port: number } {
  const l = v ?? "127.0.0.1:8080";
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(l) ?? /^()()(\d{1,5})$/.exec(l);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw usage(`--listen takes HOST:PORT (127.0.0.1:8080, [::1]:8080, 0.0.0.0:80) or PORT, not ${JSON.stringify(l)}`);
  return { host: m[1] || m[2] || "127.0.0.1", port };
}

function readyFilePath(store: CaStore, p: string | undefined): string | undefined {
  if (p === undefined) return undefined;
  if (p.trim() === "") throw usage("--ready-file needs a file name");
  confineOutput(store, p, { label: "--ready-file" }); // never a CA file, a device, FIFO or symlink (store/output.ts)
  const abs = path.resolve(p);
  const rel = store.kind === "dir" ? path.relative(store.location, abs) : "..";
  if (!rel.startsWith("..") && !path.isAbsolute(rel)) throw new PkiError("BAD_INPUT", `--ready-file ${p} is inside the CA directory: choose a path outside ${store.location}`);
  try {
    const st = fs.lstatSync(abs);
    if (!st.isFile()) throw new PkiError("BAD_INPUT", `--ready-file ${p} exists and is not a regular file`);
  } catch (e) {
    if (e instanceof PkiError) throw e;
  }
  return abs;
}

export async function run(ctx: Context, _args: string[], o: Opts): Promise<Result> {
  const store = await ctx.openStore();
  const { host, port } = parseListen(o.listen);
  const nextUpdateMinutes = intOption(o.nextUpdate, "--next-update", 1, 7 * 24 * 60) ?? 5;
  const readyFile = readyFilePath(store, o.readyFile);
  if (!(await store.exists())) throw noCa(store);

  const state = new ServeState(store, ctx.now);
  await state.load(true);
  if (state.problem) throw new PkiError("CA_INVALID", `cannot serve: ${state.problem}`);

  // the responder: issued (or renewed) now if needed; the passphrase is asked only then
  const renew = async (atStart: boolean): Promise<void> => {
    if (!needsRenewal(state.responder, ctx.now())) return;
    if (state.responderForeign) throw new PkiError("CA_INVALID", state.responderProblem!);
    const previous = state.responder?.cert.serial;
    let getPass: () => Promise<string>;
    // a CA key on a token (pki.json "key") needs no passphrase: its PIN comes from pin-source or PKI_PKCS11_PIN
    if (atStart || state.ca.settings.key !== undefined) getPass = () => caPassphrase(ctx);
    else {
      const p = ctx.passphraseFromSources();
      if (p === undefined) {
        ctx.warn(`the OCSP responder certificate ${previous ?? ""} must be renewed and no passphrase source was given: restart pki serve with --passphrase-file`);
        return;
      }
      getPass = async () => p;
    }
    const serial = await issueResponder(state.ca, getPass, previous, ctx.now);
    await state.load(true);
    ctx.info(`pki serve: ${previous ? `renewed the OCSP responder certificate (${previous} superseded)` : "issued the OCSP responder certificate"}: serial ${serial}, until ${state.responder?.cert.notAfter.toISOString()}`);
  };
  await renew(true);
  if (!state.responder) throw new PkiError("CA_INVALID", `the OCSP responder is not usable: ${state.responderProblem}`);

  const log = o.logJson ? (r: Record<string, unknown>) => void ctx.stderr.write(JSON.stringify(r) + "\n") : undefined;
  const service = new OcspService(state, { nextUpdateMinutes });
  const server = createServer(state, service, { nextUpdateMinutes, log });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(new PkiError("IO_ERROR", `cannot listen on ${host}:${port}: ${e.code === "EADDRINUSE" ? "the address is in use" : e.code === "EACCES" ? "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)" : e.code}`)),
    );
    server.listen(port, host, () => resolve());
  });
  // after start-up, a server error (e.g. EMFILE when out of file descriptors) is reported, never fatal
  server.on("error", (e: NodeJS.ErrnoException) => ctx.warn(`accepting a connection failed: ${e.code ?? e.message}`));
  // renewal: checked every hour, and at once when the responder becomes
  // unusable (e.g. `pki revoke ocsp-responder`: until a new one is issued,
  // requests get `tryLater` and nginx refuses clients); a missed renewal (no
  // passphrase source) is retried then, and /healthz says 503 meanwhile
  let renewing = false;
  const renewNow = () => {
    if (renewing) return;
    renewing = true;
    renew(false)
      .catch((e) => ctx.warn(`renewing the OCSP responder failed: ${(e as Error).message}`))
      .finally(() => (renewing = false));
  };
  state.onChange = () => {
    if (!state.responder) renewNow();
  };
  state.watch();
  const renewTimer = setInterval(renewNow, 3600_000);
  renewTimer.unref();

  // the handlers are in place before anyone is told we are ready
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    const on = (s: NodeJS.Signals) => resolve(s);
    process.once("SIGTERM", on);
    process.once("SIGINT", on);
  });
  const addr = addressOf(server);
  if (readyFile) fs.writeFileSync(readyFile, JSON.stringify({ pid: process.pid, url: `http://${addr}/` }) + "\n", { mode: 0o644 });
  const r = state.responder;
  ctx.info(`pki serve: listening on http://${addr}/ (OCSP: /ocsp, CRL: /crl and /crl.pem, CA: /ca.crt, health: /healthz)`);
  ctx.info(`pki serve: OCSP responder certificate ${r.cert.serial}, valid until ${r.cert.notAfter.toISOString()}; nextUpdate ${nextUpdateMinutes} min; stop with SIGTERM`);
  await store.audit([{ command: "serve", listen: addr, outcome: "started" }]);

  const signal = await stopped;
  clearInterval(renewTimer);
  state.close();
  // stop accepting, let requests in flight finish (they take milliseconds), then drop idle sockets
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => {
      server.closeAllConnections();
      resolve();
    }, 2000).unref();
  });
  if (readyFile) fs.rmSync(readyFile, { force: true });
  await store.audit([{ command: "serve", listen: addr, signal, outcome: "stopped" }]);
  return { data: { stopped: true, signal, listen: addr }, messages: [`pki serve: stopped (${signal})`] };
}
