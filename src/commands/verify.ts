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
 * Exit 0 only when every check passes; otherwise 1, with the same JSON
 * fields and ok:false plus an error (VERIFY_FAILED).
 */
import type { Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { PURPOSES } from "../cli/program.js";
import { OID } from "../core/certificate.js";
import { revokedSerials } from "../core/crl.js";
import { formatDn } from "../core/names.js";
import { decodeEku, findExtension, type ParsedCertificate } from "../core/parse.js";
import { issuedBy, openAuthority, type Authority } from "../ca/authority.js";
import { readCurrentCrl } from "../ca/revocation.js";
import { inspectElsewhereHint, provenanceMessage } from "../ca/provenance.js";
import { verifyParentLink } from "../ca/parent.js";
import { parseIndex } from "../core/index-format.js";
import { choiceOption } from "./options.js";
import { resolveCertificate } from "../ca/target.js";
import { palette } from "../ui/colors.js";

interface Opts {
  purpose?: string;
}

type Purpose = (typeof PURPOSES)[number];
const PURPOSE_EKU = { client: "clientAuth", server: "serverAuth", "code-signing": "codeSigning" } as const satisfies Record<Purpose, string>;

interface Check {
  name: string;
  ok: boolean;
  message: string;
}


/** EKU names of a certificate, or null when it has no EKU extension (any purpose). */
const ekuOf = (c: ParsedCertificate): string[] | null => {
  const e = findExtension(c.extensions, OID.extKeyUsage);
  return e ? decodeEku(e.value) : null;
};

export async function run(ctx: Context, args: string[], o: Opts): Promise<Result> {
  const store = await ctx.openStore();
  const purpose = choiceOption(o.purpose, "--purpose", PURPOSES);
  const ca = await openAuthority(store);
  const now = ctx.now();
  // a file must be this CA's own certificate, else NOT_ISSUED_HERE (contract: "What every command refuses")
  const t = await resolveCertificate(store, args[0]!, now, { recordedOnly: true, hint: inspectElsewhereHint(args[0]!) });
  const c = t.cert;
  const checks: Check[] = [];

  // chain
  // a file must also be the CA's own copy (ca/provenance.ts): signed with the key is not enough
  const signed = issuedBy(ca, c);
  const recorded = t.provenance === undefined || t.provenance.ok;
  const issued = signed && recorded;
  const caValid = now >= ca.cert.notBefore && now <= ca.cert.notAfter;
  // an issuing CA: the link up to the root, and the root's CRL about this CA
  const up = await verifyParentLink(ca, now);
  const chain = issued && caValid && (up?.chainOk ?? true);
  checks.push({
    name: "chain",
    ok: chain,
    message: !signed
      ? `not issued by this CA (${formatDn(ca.cert.subject)}): issued by ${formatDn(c.issuer)}, or its signature does not verify`
      : !recorded
        ? provenanceMessage(t.provenance!, c, t.source)
      : !caValid
        ? `the CA certificate is outside its validity period (until ${ca.cert.notAfter.toISOString()})`
        : up && !up.chainOk
          ? up.message
          : `signed by ${formatDn(ca.cert.subject)}${up ? `; ${up.message}` : ""}`,
  });

  // validity period
  const expired = now > c.notAfter || now < c.notBefore;
  checks.push({
    name: "validity",
    ok: !expired,
    message: now > c.notAfter ? `expired on ${c.notAfter.toISOString()}` : now < c.notBefore ? `not valid before ${c.notBefore.toISOString()}` : `valid until ${c.notAfter.toISOString()}`,
  });

  // revocation: the index and the current CRL
  let revoked = false;
  const revocation: Record<string, unknown> = { index: null, crl: null };
  if (issued) {
    const entry = parseIndex((await store.indexText()).toString("utf8")).find((e) => e.serial === c.serial);
    revocation.index = entry ? (entry.status === "R" ? "revoked" : "not revoked") : "not in the index";
    if (entry?.status === "R") revoked = true;
    let crlProblem: string | undefined;
    let cur: Awaited<ReturnType<typeof readCurrentCrl>> | undefined;
    let readError: unknown;
    try {
      cur = await readCurrentCrl(ca);
    } catch (e) {
      readError = e;
    }
    if (cur === null) crlProblem = "crl.pem is missing: run `pki crl`";
    else {
      try {
        if (readError !== undefined) throw readError;
        cur = cur!;
        const crl = cur.info;
        if (!cur.signedByCa) {
          crlProblem = "crl.pem is not signed by this CA: run `pki crl`";
        } else if (crl.nextUpdate && crl.nextUpdate.getTime() <= now.getTime()) {
          crlProblem = `crl.pem expired on ${crl.nextUpdate.toISOString()} (nginx now refuses every client): run \`pki crl\``;
        } else {
          const hit = revokedSerials(crl.revokedDer).includes(c.serial);
          revocation.crl = hit ? "revoked" : "not revoked";
          if (hit) revoked = true;
          revocation.crlNextUpdate = crl.nextUpdate?.toISOString() ?? null;
        }
      } catch (e) {
        crlProblem = `crl.pem cannot be read (${(e as Error).message}): run \`pki crl\``;
      }
    }
    if (up) {
      revocation.parentCrl = up.crl;
      if (up.revokedByParent) revoked = true;
      crlProblem ??= up.crlProblem;
    }
    if (crlProblem && revocation.crl !== "revoked") revocation.crl = "unavailable";
    const e = entry;
    checks.push({
      name: "revocation",
      ok: !revoked && !crlProblem,
      message: up?.revokedByParent
        ? `the issuing CA ${formatDn(ca.cert.subject)} is revoked by its parent (parent-crl.pem): every certificate it issued is refused`
        : revoked
        ? `revoked${e?.revokedAt ? ` on ${e.revokedAt.toISOString()}` : ""}${e?.status === "R" ? ` (${e.reason ?? "unspecified"})` : ""}${revocation.crl === "revoked" ? ", listed in crl.pem" : revocation.crl === "not revoked" ? ", but crl.pem does not list it yet: run `pki crl`" : ""}`
        : (crlProblem ?? `not revoked (index and crl.pem${up ? "; the issuing CA not revoked in parent-crl.pem" : ""})`),
    });
  } else {
    checks.push({ name: "revocation", ok: false, message: "unknown: not a certificate of this CA" });
  }

  // purpose
  let purposeOut: { name: Purpose; ok: boolean; extendedKeyUsage: string[] | null } | null = null;
  if (purpose) {
    const want = PURPOSE_EKU[purpose];
    const leaf = ekuOf(c);
    const caEku = ekuOf(ca.cert);
    const rootEku = up?.parent ? ekuOf(up.parent) : null;
    const leafOk = leaf === null || leaf.includes(want);
    const caOk = (caEku === null || caEku.includes(want)) && (rootEku === null || rootEku.includes(want));
    purposeOut = { name: purpose, ok: leafOk && caOk, extendedKeyUsage: leaf };
    checks.push({
      name: "purpose",
      ok: leafOk && caOk,
      message: !leafOk
        ? `not for ${purpose}: its extendedKeyUsage is ${leaf!.join(", ")} (no ${want})`
        : !caOk
          ? `the CA's extendedKeyUsage (${(caEku ?? rootEku)!.join(", ")}) does not allow ${want}: OpenSSL and nginx reject the chain for ${purpose}`
          : `good for ${purpose} (${want})`,
    });
  }

  const failed = checks.filter((k) => !k.ok);
  const p = palette(ctx, "stderr");
  const data = {
    serial: c.serial,
    subject: formatDn(c.subject),
    chain,
    revoked,
    expired,
    purpose: purposeOut,
    notAfter: c.notAfter.toISOString(),
    revocation,
    checks,
  };
  const lines = [`${args[0]}: ${data.subject} (serial ${c.serial})`, ...checks.map((k) => `  ${k.ok ? p.ok("ok  ") : p.bad("FAIL")} ${k.name.padEnd(10)} ${k.message}`)];
  if (failed.length) {
    return { data, messages: lines, failure: { code: "VERIFY_FAILED", message: `${args[0]}: ${failed.map((k) => `${k.name}: ${k.message}`).join("; ")}` } };
  }
  return { data, messages: [...lines, p.ok("OK")] };
}
