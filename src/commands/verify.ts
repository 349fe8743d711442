/**
 * pki verify <cert>: is this certificate good for use with this CA, now?
 *
 *   chain     issued by this CA: issuer name matches and the CA key's
 *             signature verifies; the CA certificate itself is in its
 *             validity period
 *   expired   now is outside notBefore..notAfter
 *   revoked   listed in the current crl.pem (signature checked against the
 *             CA) or marked revoked in index.txt. A missing, foreign or
 *             expired CRL fails the check: nginx refuses every client once
 *             its CRL has expired, so "not listed" means nothing then.
 *   purpose   --purpose client|server|code-signing: the leaf's
 *             extendedKeyUsage has it (an absent EKU allows any purpose, as
 *             in OpenSSL), and so does the CA's EKU when it has one (OpenSSL,
 *             and so nginx, treats a CA's EKU as a limit on the chain)
 *
 * The checks are pure (core/verify-checks.ts), their facts gathered by
 * ca/verify.ts; this file parses the options and renders the result.
 *
 * Exit 0 only when every check passes; otherwise 1, with the same JSON
 * fields and ok:false plus an error (VERIFY_FAILED).
 */
import type { Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { PURPOSES } from "../cli/program.js";
import { formatDn } from "../core/names.js";
import { verifyTarget } from "../ca/verify.js";
import { choiceOption } from "./options.js";
import { palette } from "../ui/colors.js";

interface Opts {
  purpose?: string;
}

export async function run(ctx: Context, args: string[], o: Opts): Promise<Result> {
  const store = await ctx.openStore();
  const purpose = choiceOption(o.purpose, "--purpose", PURPOSES);
  const r = await verifyTarget(store, args[0]!, ctx.now(), purpose);
  const c = r.cert;
  const data = {
    serial: c.serial,
    subject: formatDn(c.subject),
    chain: r.chain,
    revoked: r.revoked,
    expired: r.expired,
    purpose: r.purpose,
    notAfter: c.notAfter.toISOString(),
    revocation: r.revocation,
    checks: r.checks,
  };
  const p = palette(ctx, "stderr");
  const lines = [`${args[0]}: ${data.subject} (serial ${c.serial})`, ...r.checks.map((k) => `  ${k.ok ? p.ok("ok  ") : p.bad("FAIL")} ${k.name.padEnd(10)} ${k.message}`)];
  const failed = r.checks.filter((k) => !k.ok);
  if (failed.length) {
    return { data, messages: lines, failure: { code: "VERIFY_FAILED", message: `${args[0]}: ${failed.map((k) => `${k.name}: ${k.message}`).join("; ")}` } };
  }
  return { data, messages: [...lines, p.ok("OK")] };
}
