/**
 * What `pki serve` answers from: the CA certificate, a snapshot of index.txt
 * (serial -> status), the current CRL and the responder. Kept fresh without a
 * restart: the store's generation() (the directory: a stat of index.txt,
 * crl.pem and ca.crt) is polled every 250 ms, and what changed is read
 * again. A revocation committed by any `pki` process is therefore answered
 * within about 0.25 s, at most 0.5 s.
 *
 * A file that cannot be read during a reload (a half-repaired directory)
 * keeps the previous snapshot and is reported by /healthz; serve never
 * answers from a partial read: index.txt is only ever replaced whole.
 */
import * as crypto from "node:crypto";
import { openAuthority, type Authority } from "../ca/authority.js";
import { readCrlInfo } from "../core/crl.js";
import * as der from "../core/der.js";
import { parseReason, parseTime, type Reason } from "../core/index-format.js";
import { parseSpki } from "../core/parse.js";
import { parsePemBlocks, toPem } from "../core/pem.js";
import { DOC, type CaStore } from "../store/store.js";
import { loadResponder, RESPONDER_DOCS, type Responder } from "./responder.js";

export interface IndexRecord {
  status: "V" | "R" | "E";
  /** the revocation field as index.txt has it ("YYMMDDHHMMSSZ[,reason]"), parsed on use */
  rev: string;
}

export interface Crl {
  der: Uint8Array;
  pem: string;
  thisUpdate: Date;
  nextUpdate?: Date;
}

/** index.txt bytes -> serial -> record, one pass, no per-field objects beyond the record. */
export function indexSnapshot(buf: Buffer): Map<string, IndexRecord> {
  const out = new Map<string, IndexRecord>();
  const text = buf.toString("latin1");
  let p = 0;
  while (p < text.length) {
    let nl = text.indexOf("\n", p);
    if (nl < 0) nl = text.length;
    if (nl > p) {
      const t1 = text.indexOf("\t", p);
      const t2 = text.indexOf("\t", t1 + 1);
      const t3 = text.indexOf("\t", t2 + 1);
      const t4 = text.indexOf("\t", t3 + 1);
      if (t1 > 0 && t4 > 0 && t4 < nl) {
        const status = text[p] as "V" | "R" | "E";
        out.set(text.slice(t3 + 1, t4), { status, rev: text.slice(t2 + 1, t3) });
      }
    }
    p = nl + 1;
  }
  return out;
}

export function revocationOf(rec: IndexRecord): { revokedAt: Date; reason?: Reason } {
  const [t, r] = rec.rev.split(",", 2);
  const revokedAt = parseTime(t ?? "") ?? new Date(0);
  const reason = r ? (parseReason(r) ?? undefined) : undefined;
  return { revokedAt, reason };
}

type HashName = "sha1" | "sha256" | "sha384" | "sha512";

export class ServeState {
  ca!: Authority;
  caPem!: string;
  index = new Map<string, IndexRecord>();
  crl?: Crl;
  responder?: Responder;
  responderProblem?: string;
  /** the responder files hold a certificate that is not a responder's: serve must not replace them */
  responderForeign = false;
  /** last reload failure, for /healthz */
  problem?: string;
  /** bumped on every change: caches key on it */
  version = 0;
  /** issuer hashes per CertID hash algorithm: nameHash|keyHash in hex */
  private issuerIds = new Map<HashName, string>();
  /** what was loaded last: the generation and each part's bytes */
  private generation: string | undefined;
  private seen = new Map<string, Buffer | null>();
  private timer?: NodeJS.Timeout;
  private reloading = false;
  private again = false;
  onChange?: (what: string[]) => void;

  constructor(readonly store: CaStore, readonly now: () => Date = () => new Date()) {}

  /** Load everything (start-up) or what changed since the last load. */
  async load(force = false): Promise<string[]> {
    const changed: string[] = [];
    let bytes: Map<string, Buffer | null>;
    try {
      const gen = await this.store.generation();
      if (!force && gen === this.generation) return changed;
      this.generation = gen;
      const [ca, index, crl, responder, responderKey] = await Promise.all([
        this.store.read(DOC.caCert),
        this.store.indexText(),
        this.store.read(DOC.crl),
        this.store.read(RESPONDER_DOCS.cert),
        this.store.read(RESPONDER_DOCS.key).catch(() => null),
      ]);
      bytes = new Map<string, Buffer | null>([["ca", ca], ["index", index], ["crl", crl], ["responder", responder], ["responderKey", responderKey]]);
    } catch (e) {
      this.problem = (e as Error).message;
      this.generation = undefined;
      return changed;
    }
    for (const [k, b] of bytes) {
      const was = this.seen.get(k);
      if (force || was === undefined || (was === null ? b !== null : b === null || !was.equals(b))) changed.push(k);
      this.seen.set(k, b);
    }
    if (!changed.length) {
      // the store answered, with what was already loaded: a read failure
      // before is over (a failed parse is never here: it unmarks what it read)
      this.problem = undefined;
      return changed;
    }
    try {
      if (changed.includes("ca") || !this.ca) {
        this.ca = await openAuthority(this.store);
        const block = parsePemBlocks(bytes.get("ca")!.toString("utf8")).find((b) => b.label === "CERTIFICATE")!;
        this.caPem = toPem("CERTIFICATE", block.der);
        this.issuerIds.clear();
        const keyBits = parseSpki(this.ca.cert.spki.raw, der.read(this.ca.cert.spki.raw)).keyBits;
        for (const h of ["sha1", "sha256", "sha384", "sha512"] as const) {
          const nh = crypto.createHash(h).update(this.ca.cert.subjectRaw).digest("hex");
          const kh = crypto.createHash(h).update(keyBits).digest("hex");
          this.issuerIds.set(h, nh + "|" + kh);
        }
      }
      if (changed.includes("index") || changed.includes("ca")) this.index = indexSnapshot(bytes.get("index")!);
      if (changed.includes("crl") || changed.includes("ca")) this.crl = this.readCrl(bytes.get("crl") ?? null);
      if (changed.some((c) => c !== "crl")) {
        const r = await loadResponder(this.ca, this.index, this.now());
        this.responder = r.responder;
        this.responderProblem = r.problem;
        this.responderForeign = r.foreign === true;
      }
      this.problem = undefined;
    } catch (e) {
      this.problem = (e as Error).message;
      // read again on the next tick: the failure may be a file caught mid-repair
      this.generation = undefined;
      for (const c of changed) this.seen.delete(c);
    }
    this.version++;
    this.onChange?.(changed);
    return changed;
  }

  private readCrl(bytes: Buffer | null): Crl | undefined {
    if (bytes === null) return undefined;
    let d: Uint8Array = bytes;
    if (bytes.subarray(0, 64).toString("latin1").includes("-----BEGIN")) {
      const b = parsePemBlocks(bytes.toString("latin1")).find((x) => x.label === "X509 CRL");
      if (!b) return undefined;
      d = b.der;
    }
    const info = readCrlInfo(d);
    return { der: d, pem: toPem("X509 CRL", d), thisUpdate: info.thisUpdate, nextUpdate: info.nextUpdate };
  }

  /** Is this CertID's issuer this CA? (hash algorithm, name hash, key hash) */
  isOurIssuer(hash: HashName | null, nameHash: Uint8Array, keyHash: Uint8Array): boolean {
    if (!hash) return false;
    const want = this.issuerIds.get(hash);
    return want === Buffer.from(nameHash).toString("hex") + "|" + Buffer.from(keyHash).toString("hex");
  }

  /** Start watching: poll the store's generation every 250 ms. */
  watch(): void {
    const kick = () => void this.reload();
    this.timer = setInterval(kick, 250);
    this.timer.unref();
  }

  /** Coalesce bursts of events into one reload at a time. */
  async reload(): Promise<void> {
    if (this.reloading) {
      this.again = true;
      return;
    }
    this.reloading = true;
    try {
      do {
        this.again = false;
        await this.load();
      } while (this.again);
    } finally {
      this.reloading = false;
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
