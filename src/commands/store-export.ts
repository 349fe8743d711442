/**
 * pki store export --to <dir>: write the CA of the current store (--store,
 * PKI_STORE) into a new CA directory (issue #14): ca.crt, private/ca.key
 * (still encrypted), index.txt, index.meta, certs/<SERIAL>.pem, crlnumber,
 * crl.pem, pki.json, issued/, profiles/, audit.log — a directory that pki
 * uses as it is and `openssl ca` reads (-status, -gencrl, -revoke). The
 * store is only read; the directory is made whole or not at all.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { copyAndAudit } from "../ca/store-copy.js";
import { missingInput, PkiError, usage } from "../core/errors.js";
import { isDatabaseUrl, openStore } from "../store/open.js";

interface Opts {
  to?: string;
}

/** The real path `p` names: realpath of the longest part of it that exists, the rest as written. */
function realOfNew(p: string): string {
  let head = path.resolve(p);
  const tail: string[] = [];
  for (;;) {
    try {
      return path.join(fs.realpathSync.native(head), ...tail.reverse());
    } catch {
      const up = path.dirname(head);
      if (up === head) return path.resolve(p);
      tail.push(path.basename(head));
      head = up;
    }
  }
}

const inside = (parent: string, child: string): string | null => {
  const rel = path.relative(parent, child);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel)) ? rel : null;
};

/**
 * A copy of a CA directory goes outside it: inside, it would be among the
 * CA's own files (private/, issued/: the next export reads it as a key or
 * a certificate), and around it, the CA would be inside its own copy.
 * Symbolic links are followed on both sides.
 */
function refuseOverlap(caDir: string, dest: string, asGiven: string): void {
  const src = realOfNew(caDir);
  const to = realOfNew(dest);
  const rel = inside(src, to);
  if (rel === "") throw usage("--to is the CA directory itself");
  if (rel !== null) throw new PkiError("UNSAFE_PATH", `--to ${asGiven} is inside the CA directory ${caDir} (${rel}): pki keeps its own files there; export to a directory outside it`);
  if (inside(to, src) !== null) throw new PkiError("UNSAFE_PATH", `--to ${asGiven} holds the CA directory ${caDir}: export to a new directory outside it`);
}

export async function run(ctx: Context, _args: string[], o: Opts): Promise<Result> {
  if (!o.to) throw missingInput("the directory to write the CA into", "--to <dir>");
  if (isDatabaseUrl(o.to)) throw usage("--to is a directory; to copy a CA directory into a database use `pki store migrate --from <dir> --to <url>`");
  const dest = path.resolve(o.to);
  ctx.auditInfo.to = dest;
  const from = await ctx.openStore();
  if (from.kind === "dir") refuseOverlap(from.location, dest, o.to);
  const r = await copyAndAudit("store export", from, await openStore(dest), ctx.now());
  return {
    data: { ...r },
    messages: [`Wrote the CA of ${r.from} to ${r.to}: ${r.certificates} certificate(s) (${r.revoked} revoked), ${r.documents} document(s), ${r.auditRecords} audit record(s); \`openssl ca\` reads it`],
  };
}
