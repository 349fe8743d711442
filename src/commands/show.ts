/**
 * pki show <target>: a certificate, CSR or CRL in readable form (file,
 * serial or issued name). Reads only; never needs the CA key.
 * JSON carries the decoded fields (ca/show.ts); this file renders them.
 */
import type { Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { describeTarget } from "../ca/show.js";
import { palette, statusColour, type Palette } from "../ui/colors.js";

const colons = (h: string) => h.toUpperCase().match(/../g)!.join(":");

/** basicConstraints in words: "no", "yes", "yes, path length 0". */
function caText(bc: unknown): string | null {
  if (!bc || typeof bc !== "object") return null;
  const b = bc as { ca?: boolean; pathLen?: number | null; pathLenConstraint?: number | null };
  if (!b.ca) return "no";
  const len = b.pathLen ?? b.pathLenConstraint;
  return len === undefined || len === null ? "yes" : `yes, path length ${len}`;
}

/** A CSR's requested extensions as "name: value; ..." (no JSON in human output). */
function extensionsText(ext: Record<string, unknown>): string | null {
  const parts = Object.entries(ext).map(([k, v]) => {
    const val = Array.isArray(v) ? v.join(", ") : v && typeof v === "object" ? (k === "basicConstraints" ? caText(v) : Object.entries(v).map(([a, b]) => `${a}=${String(b)}`).join(", ")) : String(v);
    return `${k}: ${val}`;
  });
  return parts.length ? parts.join("; ") : null;
}

function render(p: Palette, d: Record<string, unknown>): string {
  const L = (k: string, v: unknown) => `${p.label(k.padEnd(18))}${v === null || v === undefined || (Array.isArray(v) && v.length === 0) ? p.dim("-") : Array.isArray(v) ? v.join(", ") : String(v)}`;
  const lines: string[] = [];
  if (d.type === "certificate") {
    const rev = d.revocation as { status: string; revokedAt: string | null; reason: string | null };
    const fp = d.fingerprints as { sha256: string; sha1: string };
    const validity = d.validity === "valid" ? p.ok(String(d.timeLeft) + " left") : p.bad(String(d.validity) + ` (${d.timeLeft})`);
    lines.push(
      p.bold("Certificate"),
      L("Subject", d.subject),
      L("Issuer", d.issuer),
      L("Serial", d.serial),
      L("Valid from", d.notBefore),
      L("Valid until", `${d.notAfter}  ${validity}`),
      L("Key", d.keyType),
      L("SANs", d.san),
      L("Key usage", d.keyUsage),
      L("Extended usage", d.extendedKeyUsage),
      L("CA", caText(d.basicConstraints)),
      L("Chain", (d.chain as string[]).length ? (d.chain as string[]).join("  <-  ") : null),
      ...(d.nameConstraints ? [L("Name constraints", d.nameConstraints)] : []),
      L("Profile", d.profile),
      L("Name", d.name),
      L("Status", statusColour(p, rev.status) + (rev.revokedAt ? ` on ${rev.revokedAt} (${rev.reason})` : "")),
      L("SHA-256", colons(fp.sha256)),
      L("SHA-1", colons(fp.sha1)),
    );
  } else if (d.type === "csr") {
    const fp = d.fingerprints as { sha256: string };
    lines.push(
      p.bold("Certificate signing request"),
      L("Subject", d.subject),
      L("Key", d.keyType),
      L("SANs", d.san),
      L("Extensions", extensionsText(d.extensions as Record<string, unknown>)),
      L("Signature", d.signatureValid ? p.ok("valid") : p.bad("INVALID")),
      L("SHA-256", colons(fp.sha256)),
    );
  } else {
    const fp = d.fingerprints as { sha256: string };
    const next = d.nextUpdate === null ? null : `${d.nextUpdate}  ${d.stale ? p.bad(String(d.timeLeft)) : p.ok(String(d.timeLeft) + " left")}`;
    lines.push(
      p.bold("Certificate revocation list"),
      L("Issuer", d.issuer),
      L("CRL number", d.crlNumber),
      L("This update", d.thisUpdate),
      L("Next update", next),
      L("Signature", d.signatureValid === null ? "not checked (not this CA's CRL)" : d.signatureValid ? p.ok(`valid (${d.issuerRole})`) : p.bad("INVALID")),
      L("Revoked", d.revokedCount),
      ...(d.revoked as Array<{ serial: string; revokedAt: string; reason: string }>).map((r) => `  ${r.serial}  ${r.revokedAt}  ${r.reason}`),
      L("SHA-256", colons(fp.sha256)),
    );
  }
  return lines.join("\n");
}

export async function run(ctx: Context, args: string[]): Promise<Result> {
  const store = await ctx.openStore();
  const data = await describeTarget(store, args[0]!, ctx.now());
  return { data, stdout: render(palette(ctx), data) };
}
