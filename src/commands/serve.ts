/**
 * pki serve: the revocation status server of the CA (OCSP, CRL, CA
 * certificate, health) until SIGTERM or SIGINT. The parts live in
 * src/serve/ (state: what is answered, kept fresh; responder: the delegated
 * signing certificate; server: HTTP; lifecycle: ready file, listen, stop)
 * and src/core/ocsp.ts (the protocol).
 */
import { PkiError, usage } from "../core/errors.js";
import { caPassphrase, type Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { noCa } from "../ca/authority.js";
import { intOption } from "./options.js";
import { ServeState } from "../serve/state.js";
import { issueResponder, needsRenewal } from "../serve/responder.js";
import { addressOf, createServer, OcspService } from "../serve/server.js";
import { listenOn, readyFilePath, removeReadyFile, stopServer, stopSignal, writeReadyFile } from "../serve/lifecycle.js";

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

/**
 * The responder certificate, issued (or renewed) when needed; the passphrase
 * is asked only then. At start a missing passphrase is an error; later (the
 * hourly check) a warning, and /healthz says 503 until a restart.
 */
function responderRenewal(ctx: Context, state: ServeState): (atStart: boolean) => Promise<void> {
  return async (atStart) => {
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
}

/**
 * Renewal: checked every hour, and at once when the responder becomes
 * unusable (e.g. `pki revoke ocsp-responder`: until a new one is issued,
 * requests get `tryLater` and nginx refuses clients); a missed renewal (no
 * passphrase source) is retried then, and /healthz says 503 meanwhile.
 * Returns the hourly timer.
 */
function keepRenewed(ctx: Context, state: ServeState, renew: (atStart: boolean) => Promise<void>): NodeJS.Timeout {
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
  return renewTimer;
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
  const renew = responderRenewal(ctx, state);
  await renew(true);
  if (!state.responder) throw new PkiError("CA_INVALID", `the OCSP responder is not usable: ${state.responderProblem}`);

  const log = o.logJson ? (r: Record<string, unknown>) => void ctx.stderr.write(JSON.stringify(r) + "\n") : undefined;
  const service = new OcspService(state, { nextUpdateMinutes });
  const server = createServer(state, service, { nextUpdateMinutes, log });
  await listenOn(server, host, port);
  // after start-up, a server error (e.g. EMFILE when out of file descriptors) is reported, never fatal
  server.on("error", (e: NodeJS.ErrnoException) => ctx.warn(`accepting a connection failed: ${e.code ?? e.message}`));
  const renewTimer = keepRenewed(ctx, state, renew);

  // the handlers are in place before anyone is told we are ready
  const stopped = stopSignal();
  const addr = addressOf(server);
  if (readyFile) writeReadyFile(store, readyFile, { pid: process.pid, url: `http://${addr}/` });
  const r = state.responder;
  ctx.info(`pki serve: listening on http://${addr}/ (OCSP: /ocsp, CRL: /crl and /crl.pem, CA: /ca.crt, health: /healthz)`);
  ctx.info(`pki serve: OCSP responder certificate ${r.cert.serial}, valid until ${r.cert.notAfter.toISOString()}; nextUpdate ${nextUpdateMinutes} min; stop with SIGTERM`);
  await store.audit([{ command: "serve", listen: addr, outcome: "started" }]);

  const signal = await stopped;
  clearInterval(renewTimer);
  state.close();
  await stopServer(server);
  if (readyFile) removeReadyFile(readyFile);
  await store.audit([{ command: "serve", listen: addr, signal, outcome: "stopped" }]);
  return { data: { stopped: true, signal, listen: addr }, messages: [`pki serve: stopped (${signal})`] };
}
