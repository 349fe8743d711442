/**
 * `pki export p12`'s CA half: which issued name a target is, its key as the
 * store keeps it, and the PKCS#12 built from them. Nothing here takes the
 * store's lock: the PKCS#12 (PBKDF2 with many iterations, the slow part) is
 * built from a snapshot read, and only the finished file is written, through
 * store/output.ts (issue #9: slow work never under the lock).
 */
import * as path from "node:path";
import { PkiError } from "../core/errors.js";
import { keyMatches, loadPrivateKey } from "../crypto/keys.js";
import { buildPkcs12, type Pkcs12Format } from "../crypto/pkcs12.js";
import { DOC, type CaStore } from "../store/store.js";
import { docWhere, openAuthority, type Authority } from "./authority.js";
import { p12CaPem } from "./parent.js";
import { resolveCertificate, type CertTarget } from "./target.js";

export interface P12Source {
  ca: Authority;
  t: CertTarget;
  /** the issued name */
  name: string;
  /** private/<name>.key as stored (a key readable by others is refused: KEY_MODE) */
  keyPem: string;
}

/** The issued name a target stands for, and its key; NOT_FOUND when pki holds no key for it. */
export async function p12Source(store: CaStore, target: string, now: Date): Promise<P12Source> {
  const ca = await openAuthority(store);
  const t = await resolveCertificate(store, target, now, { recordedOnly: true });
  const name = t.meta?.name;
  if (!name) throw new PkiError("NOT_FOUND", `${target} is not a name issued with \`pki issue\`: pki holds no key for it (the holder of a CSR keeps the key and makes the PKCS#12 with \`openssl pkcs12 -export\`)`);
  const keyPath = docWhere(store, DOC.issuedKey(name));
  const keyPem = await store.read(DOC.issuedKey(name));
  if (keyPem === null) throw new PkiError("NOT_FOUND", `the key of "${name}" is not in ${path.dirname(keyPath)} (was it issued with --out-dir?)`);
  return { ca, t, name, keyPem: keyPem.toString("utf8") };
}

/** The PKCS#12 of the source: key (decrypted with keyPassphrase when it is encrypted), certificate and CA chain. */
export async function buildExportP12(src: P12Source, password: string, format: Pkcs12Format, keyPassphrase: () => Promise<string>): Promise<Uint8Array> {
  const { name, t } = src;
  const key = await loadPrivateKey(src.keyPem, `private/${name}.key`, keyPassphrase);
  if (!keyMatches(key, t.cert.spki.raw)) {
    throw new PkiError("CA_INVALID", `private/${name}.key does not belong to serial ${t.cert.serial}; run \`pki doctor\``);
  }
  return buildPkcs12({ key, certPem: t.pem, caPem: p12CaPem(src.ca), password, format, friendlyName: name });
}
