/**
 * `pki crl` over a CA store (#9): where the CRL goes, whether the current
 * one may stay, and the re-signing itself (ca/revocation.ts resignCrl).
 */
import * as path from "node:path";
import { usage } from "../core/errors.js";
import { readInputFile } from "../store/ca-dir.js";
import { confineOutput } from "../store/output.js";
import { DOC, type CaStore, type StoreReader } from "../store/store.js";
import { docWhere, type Authority } from "./open-ca.js";
import { crlFromBytes, crlResignReason, readCurrentCrl, type CurrentCrl } from "./revocation.js";

export interface CrlTarget {
  /** the file the CRL is written to (a document name in a database when it is the CA's own) */
  path: string;
  /** the CA's own crl.pem (re-signed in the store) rather than a file the user named */
  own: boolean;
  der: boolean;
}

/**
 * Where `pki crl` writes. --out is confined (store/output.ts): never a CA
 * state file (crl.pem included: the contract's crl*.pem; the CA's own
 * crl.pem is what plain `pki crl` writes), never a device or FIFO. crl.der
 * is not state: --der's default. DER in crl.pem would break nginx's
 * ssl_crl: --der without --out writes crl.der. In a database the CA's own
 * crl.pem is a document, never a file of the current directory: --out there
 * is a plain output.
 */
export function crlTarget(store: CaStore, out: string | undefined, der: boolean): CrlTarget {
  if (out !== undefined && out.trim() === "") throw usage("--out needs a file name");
  const crlDer = docWhere(store, "crl.der");
  const crlPath = docWhere(store, DOC.crl);
  const confined = out !== undefined ? confineOutput(store, out, { own: [crlDer], label: "--out", hint: "plain `pki crl` (no --out) re-signs the CA's crl.pem; otherwise choose a path outside them" }) : undefined;
  const own = !der && (confined === undefined || (store.kind === "dir" && confined === path.resolve(crlPath)));
  const p = confined ?? (store.kind === "dir" || der ? path.resolve(der ? crlDer : crlPath) : crlPath);
  return { path: p, own, der };
}

/** A CRL file the user named (--out), or null when there is none. */
function readOutCrl(ca: Authority, p: string): CurrentCrl | null {
  let bytes: Buffer;
  try {
    bytes = readInputFile(p, "CRL");
  } catch (e) {
    if ((e as { code?: string }).code === "NOT_FOUND") return null;
    throw e;
  }
  return crlFromBytes(ca, bytes, p);
}

/**
 * --if-expiring-within: the target's current CRL when it may stay as it is
 * (further than `within` days from its nextUpdate and matching the index:
 * crlResignReason), else null (re-sign). Always null without the option.
 */
export async function crlThatMayStay(ca: Authority, reader: StoreReader, t: CrlTarget, now: Date, within: number | undefined): Promise<CurrentCrl | null> {
  if (within === undefined) return null;
  const cur = t.own ? await readCurrentCrl(ca, reader) : readOutCrl(ca, t.path);
  return crlResignReason(cur, (await reader.indexText()).toString("utf8"), now, within) === null ? cur : null;
}
