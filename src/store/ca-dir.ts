/**
 * The CA directory on disk (layout: README "The CA directory").
 *
 * Reading is done here; writing goes through atomic.ts, under lock.ts.
 * Required modes (certstrap's depot habit): private/ 0700, every key 0600,
 * everything else 0644; a key file readable by group or others is refused.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PkiError } from "../core/errors.js";
import { normalizeIndex, parseIndex, parseMeta, type IndexEntry, type MetaEntry } from "../core/index-format.js";
import { parseCrlNumber } from "../core/crl.js";
import { validateProfile, type Profile } from "../core/profiles.js";
import { validateNamePolicy, type NamePolicy } from "../core/csr-policy.js";
import { appendLine } from "./atomic.js";
import { MAX_INPUT, readBounded, readStdin } from "./input.js";
import { parsePkcs11Uri } from "../core/pkcs11-uri.js";
import { INSTALL_DIR } from "./install-dir.js";
import { didYouMean } from "../core/suggest.js";

export const TEMPLATES_DIR = path.join(INSTALL_DIR, "templates");

export const MODE = { privateDir: 0o700, key: 0o600, file: 0o644, dir: 0o755 } as const;

export interface Settings {
  version: 1;
  subject: string;
  keyType: string;
  /** default leaf validity in days (a profile's own "days" wins) */
  defaultDays?: number;
  crlDays: number;
  crlUrl?: string;
  ocspUrl?: string;
  caIssuersUrl?: string;
  codeSigning: boolean;
  pathLen?: number;
  encrypted: boolean;
  policy: NamePolicy;
  /** the CA key on a PKCS#11 token (RFC 7512 URI); absent: private/ca.key */
  key?: string;
}

/** pki.json "key": a pkcs11: URI (checked when read, so a typo fails before any work) */
function keySetting(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new PkiError("CA_INVALID", 'pki.json: "key" must be a pkcs11: URI string');
  try {
    parsePkcs11Uri(v);
  } catch (e) {
    throw new PkiError("CA_INVALID", `pki.json: "key": ${(e as Error).message}`);
  }
  return v;
}

/** RFC 5280 5.2.3: a CRL number is at most 20 octets (a non-negative INTEGER, so below 2^159). */
export const MAX_CRL_NUMBER = (1n << 159n) - 1n;

export { MAX_INPUT };

/** pki.json's text, checked: the settings every command relies on (CA_INVALID when wrong). */
export function parseSettings(text: string): Settings {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    if (e instanceof PkiError) throw e;
    throw new PkiError("CA_INVALID", `pki.json is not valid JSON: ${(e as Error).message}`);
  }
  const s = raw as Partial<Settings>;
  if (typeof s !== "object" || s === null || s.version !== 1) throw new PkiError("CA_INVALID", "pki.json: missing or unknown \"version\" (expected 1)");
  const days = (v: unknown, name: string, dflt?: number) => {
    if (v === undefined) return dflt;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 36500) throw new PkiError("CA_INVALID", `pki.json: "${name}" must be a whole number of days`);
    return v;
  };
  for (const k of ["crlUrl", "ocspUrl", "caIssuersUrl"] as const) {
    const v = s[k];
    if (v === undefined || v === null) continue;
    // embedded as an IA5String in every certificate: ASCII, no spaces or control characters, a scheme
    if (typeof v !== "string" || !/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[\x21-\x7e]+$/.test(v) || v.length > 2048) {
      throw new PkiError("CA_INVALID", `pki.json: "${k}" must be an ASCII URL such as http://pki.example.lan/crl.pem, without spaces or control characters; fix pki.json`);
    }
  }
  return {
    version: 1,
    subject: String(s.subject ?? ""),
    keyType: String(s.keyType ?? ""),
    defaultDays: days(s.defaultDays, "defaultDays"),
    crlDays: days(s.crlDays, "crlDays", 7)!,
    crlUrl: s.crlUrl ?? undefined,
    ocspUrl: s.ocspUrl ?? undefined,
    caIssuersUrl: s.caIssuersUrl ?? undefined,
    codeSigning: s.codeSigning === true,
    pathLen: s.pathLen,
    encrypted: s.encrypted !== false,
    policy: validateNamePolicy(s.policy),
    key: keySetting(s.key),
  };
}

function loadProfileDir(out: Map<string, Profile>, dir: string, label: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith(".json")).sort();
  } catch {
    return;
  }
  for (const file of names) out.set(file.slice(0, -5), profileFromText(file, fs.readFileSync(path.join(dir, file), "utf8"), `${label}/${file}`));
}

/** One profile file's text, validated (PROFILE_INVALID). */
export function profileFromText(file: string, text: string, src: string): Profile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new PkiError("PROFILE_INVALID", `profile ${src}: not valid JSON (${(e as Error).message})`);
  }
  return validateProfile(file.replace(/^.*\//, "").slice(0, -5), data, src);
}

let builtins: Map<string, Profile> | undefined;
/** The built-in profiles (templates/profiles: program data, not CA state). */
export function builtinProfiles(): ReadonlyMap<string, Profile> {
  if (!builtins) {
    const m = new Map<string, Profile>();
    loadProfileDir(m, path.join(TEMPLATES_DIR, "profiles"), "templates/profiles");
    builtins = m;
  }
  return builtins;
}

/**
 * A file's contents made into a value once, and the value reused while the
 * file is the same file: it is opened and fstat'ed at every read, and reused
 * only when device, inode, size, mtime and ctime (nanoseconds) are all the
 * same as when it was read (CaDir.readIndexBuffer says why that is enough).
 */
class SameFileCache<T> {
  private last: { id: string; value: T } | undefined;
  constructor(
    private readonly label: string,
    private readonly make: (bytes: Buffer) => T,
    private readonly missing: () => T,
  ) {}

  read(file: string): T {
    const failed = (e: unknown) => {
      this.last = undefined;
      return new PkiError("IO_ERROR", `cannot read ${this.label} (${file}): ${(e as NodeJS.ErrnoException).code}`);
    };
    let fd: number;
    try {
      fd = fs.openSync(file, "r");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw failed(e);
      this.last = undefined;
      return this.missing();
    }
    try {
      let bytes: Buffer;
      let id: string;
      try {
        const st = fs.fstatSync(fd, { bigint: true });
        id = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
        if (this.last?.id === id) return this.last.value;
        bytes = fs.readFileSync(fd);
      } catch (e) {
        throw failed(e);
      }
      this.last = { id, value: this.make(bytes) };
      return this.last.value;
    } finally {
      fs.closeSync(fd);
    }
  }

  forget(): void {
    this.last = undefined;
  }
}

export class CaDir {
  constructor(readonly dir: string) {}

  p(...parts: string[]): string {
    return path.join(this.dir, ...parts);
  }

  get settingsPath() { return this.p("pki.json"); }
  get caCertPath() { return this.p("ca.crt"); }
  get caKeyPath() { return this.p("private", "ca.key"); }
  get indexPath() { return this.p("index.txt"); }
  get metaPath() { return this.p("index.meta"); }
  get crlNumberPath() { return this.p("crlnumber"); }
  get crlPath() { return this.p("crl.pem"); }
  get bundlePath() { return this.p("ca-clients.crt"); }
  /** the nginx allow-list map include (only when the admin opted in: pki.json "allowList") */
  get allowMapPath() { return this.p("nginx-allow.map"); }
  get auditPath() { return this.p("audit.log"); }
  /** Two-tier PKI (ca/parent.ts): the parent CA's certificate and CRL, and the files built from them */
  get parentCertPath() { return this.p("parent.crt"); }
  get parentCrlPath() { return this.p("parent-crl.pem"); }
  get crlChainPath() { return this.p("crl-chain.pem"); }
  get caChainPath() { return this.p("ca-chain.crt"); }
  certPath(serial: string) { return this.p("certs", `${serial}.pem`); }

  hasCa(): boolean {
    return fs.existsSync(this.settingsPath) || fs.existsSync(this.caCertPath) || fs.existsSync(this.caKeyPath);
  }

  requireCa(): void {
    if (!fs.existsSync(this.settingsPath) || !fs.existsSync(this.caCertPath)) {
      throw new PkiError("NO_CA", `no CA in ${this.dir}: run \`pki init\` there, or pass --dir / set PKI_DIR`);
    }
  }

  readText(p: string, what: string): string {
    try {
      return fs.readFileSync(p, "utf8");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") throw new PkiError("CA_INVALID", `${what} (${p}) is missing; run \`pki doctor\``);
      throw new PkiError("IO_ERROR", `cannot read ${what} (${p}): ${code}`);
    }
  }

  readSettings(): Settings {
    this.requireCa();
    return parseSettings(this.readText(this.settingsPath, "pki.json"));
  }

  /** Refuse a private key file that group or others can read (as ssh does). */
  checkKeyMode(p: string): void {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new PkiError("CA_INVALID", `the key ${p} is missing`);
      throw new PkiError("IO_ERROR", `cannot read ${p}: ${(e as NodeJS.ErrnoException).code}`);
    }
    if (st.mode & 0o077) {
      throw new PkiError("KEY_MODE", `${p} has mode ${(st.mode & 0o777).toString(8).padStart(4, "0")}: a private key must not be readable by others; run chmod 600 ${p}`);
    }
  }

  readCaKeyPem(): string {
    this.checkKeyMode(this.caKeyPath);
    return this.readText(this.caKeyPath, "the CA key");
  }

  /** index.txt as text, BOM and CRLF dropped (normalizeIndex). */
  readIndexText(): string {
    return this.readIndexBuffer().toString("utf8");
  }

  /**
   * The last index.txt read, with the identity of the file it was read from
   * (see readIndexBuffer). Dropped by forgetIndex when a commit replaces the
   * index.
   */
  private readonly indexFile = new SameFileCache("index.txt", (bytes) => normalizeIndex(bytes), () => Buffer.alloc(0));

  /**
   * index.txt as bytes (empty when there is none): for the CRL builder and
   * revocation, which never parse it whole.
   *
   * Read once per command: a command resolves its targets before it takes
   * the lock and reads the index again under it (a revocation in a
   * 100,000-line index read 2 x 10 MB). The second read of an unchanged file
   * returns the bytes of the first: the file is opened and fstat'ed every
   * time, and its bytes are reused only when device, inode, size, mtime and
   * ctime (nanoseconds) are all the same as when they were read. Every pki
   * writer replaces index.txt by a rename (a new inode), `openssl ca` too; an
   * edit in place changes ctime (and mtime). The buffer is shared: nobody
   * writes into an index buffer (changes make new ones: core/index-edit.ts).
   */
  readIndexBuffer(): Buffer {
    return this.indexFile.read(this.indexPath);
  }


  /** Forget the index read last (a commit replaced index.txt: its memory is not kept). */
  forgetIndex(): void {
    this.indexFile.forget();
  }

  readIndex(): IndexEntry[] {
    return parseIndex(this.readIndexText());
  }

  /** The last index.meta parsed, with the identity of the file (as the index's). */
  private readonly metaFile = new SameFileCache("index.meta", (bytes) => parseMeta(bytes.toString("utf8")), () => new Map<string, MetaEntry>());

  /**
   * index.meta, parsed once per command as index.txt is read once
   * (readIndexBuffer): a second call while the file is the same file (device,
   * inode, size, mtime, ctime) gets a copy of the first parse, not a new parse
   * of up to 100,000 lines. index.meta only grows by appends (or is cut back
   * to its earlier size, earlier bytes, by a failed commit); doctor replaces
   * it by a rename. Each caller gets its own Map.
   */
  readMeta(): Map<string, MetaEntry> {
    return new Map(this.metaFile.read(this.metaPath));
  }


  readCrlNumber(): bigint {
    if (!fs.existsSync(this.crlNumberPath)) return 1n;
    const n = parseCrlNumber(this.readText(this.crlNumberPath, "crlnumber"));
    if (n === null) throw new PkiError("CA_INVALID", "crlnumber does not hold a hex number; run `pki doctor`");
    if (n > MAX_CRL_NUMBER) throw new PkiError("CA_INVALID", "crlnumber is longer than 20 octets, the most RFC 5280 5.2.3 allows: fix crlnumber (a CRL number only has to grow)");
    return n;
  }

  /** Built-in profiles from templates/profiles, then the CA's own from <dir>/profiles (they override). */
  loadProfiles(): Map<string, Profile> {
    const out = new Map(builtinProfiles());
    loadProfileDir(out, this.p("profiles"), path.join(this.dir, "profiles"));
    return out;
  }

  profile(name: string): Profile {
    const all = this.loadProfiles();
    const p = all.get(name);
    if (!p) throw new PkiError("PROFILE_INVALID", `unknown profile "${name}"${didYouMean(name, all.keys())}: use one of ${[...all.keys()].join(", ")} (or add ${this.p("profiles", name + ".json")})`);
    return p;
  }

  /** Several audit lines in one append (one fsync): a batch of 1,000 issuances is one write, not 1,000. */
  auditMany(records: readonly Record<string, unknown>[]): void {
    if (records.length === 0 || !fs.existsSync(this.dir) || !fs.existsSync(this.settingsPath)) return;
    const time = new Date().toISOString();
    try {
      appendLine(this.auditPath, records.map((r) => JSON.stringify({ time, ...r })).join("\n") + "\n");
    } catch {
      // the audit log must never turn a success into a failure
    }
  }

  /** One JSON line per change or refusal. Never a passphrase or a key. */
  audit(record: Record<string, unknown>): void {
    if (!fs.existsSync(this.dir) || !fs.existsSync(this.settingsPath)) return;
    try {
      appendLine(this.auditPath, JSON.stringify({ time: new Date().toISOString(), ...record }));
    } catch {
      // the audit log must never turn a success into a failure
    }
  }
}

/** Read a user-supplied input file (CSR, certificate, list): bounded (store/input.ts), clear errors. */
export function readInputFile(p: string, what: string, max = MAX_INPUT): Buffer {
  return readBounded(p, max, { what, shown: p });
}

export { readStdin };
