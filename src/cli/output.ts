/**
 * Output is data first: a command returns a Result; this module prints it,
 * as one JSON document with --json, else as text (data on stdout, chatter on
 * stderr). It is also the one place that turns an error into a message and
 * an exit code.
 */
import { ERROR_CODES, isPkiError, PkiError } from "../core/errors.js";

export interface Result {
  /** the JSON fields (without "ok") */
  data: Record<string, unknown>;
  /** what goes to stdout without --json (a PEM, a table, a config) */
  stdout?: string;
  /** human lines for stderr without --json */
  messages?: string[];
  /** lines for stderr in both modes (with --json too): what a script must not miss, e.g. a duplicate certificate */
  warnings?: string[];
  /** a command that ran but whose verdict is negative (verify, doctor): exit 1, JSON ok:false */
  failure?: { code: keyof typeof ERROR_CODES; message: string };
}

export interface Sink {
  json: boolean;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** --quiet: the human messages of a success are not printed */
  quiet?: boolean;
}

export function printResult(sink: Sink, r: Result): number {
  for (const w of r.warnings ?? []) sink.stderr.write(w + "\n");
  if (sink.json) {
    const doc = r.failure
      ? { ok: false, ...r.data, error: { code: r.failure.code, message: r.failure.message } }
      : { ok: true, ...r.data };
    sink.stdout.write(JSON.stringify(doc, null, 2) + "\n");
  } else {
    if (r.stdout) sink.stdout.write(r.stdout.endsWith("\n") ? r.stdout : r.stdout + "\n");
    // --quiet keeps warnings: cron mails them, which is the point of a warning
    for (const m of r.messages ?? []) if (!sink.quiet || m.startsWith("pki: warning:")) sink.stderr.write(m + "\n");
    if (r.failure) sink.stderr.write(`pki: error: ${r.failure.message}\n`);
  }
  return r.failure ? 1 : 0;
}

export function printError(sink: Sink, e: unknown, debug: boolean): number {
  let err: PkiError;
  if (isPkiError(e)) err = e;
  else {
    const msg = e instanceof Error ? e.message : String(e);
    err = new PkiError("INTERNAL", `unexpected failure: ${msg.split("\n")[0]}; run again with PKI_DEBUG=1 and report it`);
  }
  if (sink.json) {
    sink.stdout.write(JSON.stringify({ ok: false, ...(err.details ?? {}), error: { code: err.code, message: err.message } }, null, 2) + "\n");
  } else {
    sink.stderr.write(`pki: error: ${err.message}\n`);
  }
  if (debug && e instanceof Error && e.stack) sink.stderr.write(e.stack + "\n");
  return err.exitCode;
}
