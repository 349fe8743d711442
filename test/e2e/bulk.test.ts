/**
 * Bulk paths and the huge-CRL builder, judged by openssl. No timing here:
 * speed is measured by `npm run bench`, never asserted.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { BIN, cleanEnv, json, makeCa, openssl, PASSPHRASE, snapshot } from "../helpers.js";
import { openSigningAuthority } from "../../src/ca/authority.js";
import { buildCrl, revokeSerials } from "../../src/ca/revocation.js";
import { CaDir } from "../../src/store/ca-dir.js";
import { DirStore } from "../../src/store/dir-store.js";

const verifyAll = (caCrt: string, files: string[]) => {
  const v = openssl(["verify", "-CAfile", caCrt, "-purpose", "sslclient", ...files]);
  return { code: v.code, ok: v.stdout.split("\n").filter((l) => l.endsWith(": OK")).length, out: v.stdout + v.stderr };
};

describe("pki issue --names-from: a batch of 200 pairs", () => {
  const ca = makeCa();
  const names = Array.from({ length: 200 }, (_, i) => `agent-${String(i).padStart(3, "0")}`);
  const list = path.join(ca.root, "agents.txt");
  fs.writeFileSync(list, "# fleet\n" + names.join("\n") + "\n\n");
  const r = ca.run(["issue", "client", "--names-from", list, "--json"]);

  it("issues every pair, each certificate verifying with openssl for client auth", () => {
    expect(r.code, r.stderr).toBe(0);
    const d = json(r);
    expect(d.certificates).toHaveLength(200);
    expect(d.certificates.map((c: { name: string }) => c.name)).toEqual(names);
    const v = verifyAll(path.join(ca.dir, "ca.crt"), d.certificates.map((c: { cert: string }) => c.cert));
    expect(v.code, v.out).toBe(0);
    expect(v.ok).toBe(200);
  });

  it("gives unique serials, one index.txt line and one index.meta line per certificate", () => {
    const d = json(r);
    const serials: string[] = d.certificates.map((c: { serial: string }) => c.serial);
    expect(new Set(serials).size).toBe(200);
    const index = fs.readFileSync(path.join(ca.dir, "index.txt"), "utf8").split("\n").filter(Boolean);
    expect(index).toHaveLength(200);
    expect(index.map((l) => l.split("\t")[3]).sort()).toEqual([...serials].sort());
    for (const l of index) expect(l).toMatch(/^V\t\d{12}Z\t\t[0-9A-F]+\tunknown\t\/CN=agent-\d{3}$/);
    const meta = fs.readFileSync(path.join(ca.dir, "index.meta"), "utf8").split("\n").filter(Boolean);
    expect(meta.sort()).toEqual(d.certificates.map((c: { serial: string; name: string }) => `${c.serial}\tclient\t${c.name}`).sort());
  });

  it("writes certs/<SERIAL>.pem for each serial, keys 0600 that match their certificates", () => {
    const d = json(r);
    for (const c of d.certificates as Array<{ serial: string; cert: string; key: string }>) {
      expect(fs.readFileSync(path.join(ca.dir, "certs", `${c.serial}.pem`), "utf8")).toBe(fs.readFileSync(c.cert, "utf8"));
      expect(fs.statSync(c.key).mode & 0o777).toBe(0o600);
    }
    for (const c of (d.certificates as Array<{ cert: string; key: string }>).filter((_, i) => i % 50 === 0)) {
      const fromCert = openssl(["x509", "-in", c.cert, "-noout", "-pubkey"]).stdout;
      const fromKey = openssl(["pkey", "-in", c.key, "-pubout"]).stdout;
      expect(fromKey).toBe(fromCert);
    }
    // no staging leftovers
    const leftovers = fs.readdirSync(ca.dir, { recursive: true }).map(String).filter((f) => f.endsWith(".tmp"));
    expect(leftovers).toEqual([]);
  });

  it("logs one audit line per certificate", () => {
    const lines = fs.readFileSync(path.join(ca.dir, "audit.log"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
    const issued = lines.filter((l) => l.command === "issue" && l.outcome === "ok");
    expect(issued).toHaveLength(200);
    expect(new Set(issued.map((l) => l.serial)).size).toBe(200);
  });
});

/** A CA, a names file of n `prefix<i>` lines and an empty out/ for a bulk issue run in the background. */
function bulkFixture(n: number, prefix: string): { ca: ReturnType<typeof makeCa>; list: string; out: string } {
  const ca = makeCa();
  const list = path.join(ca.root, "list.txt");
  fs.writeFileSync(list, Array.from({ length: n }, (_, i) => `${prefix}${i}`).join("\n"));
  const out = path.join(ca.root, "out");
  fs.mkdirSync(out);
  return { ca, list, out };
}

/** Poll `dir` every few ms until a file name passes `seen` (30 s at most). */
async function until(dir: string, seen: (f: string) => boolean): Promise<void> {
  const t0 = Date.now();
  while (!fs.readdirSync(dir).some(seen) && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 2));
}

describe("bulk batches are all-or-nothing", () => {
  it("a bad name anywhere in the list fails the whole batch and changes nothing", () => {
    const ca = makeCa();
    expect(ca.run(["issue", "client", "first"]).code).toBe(0);
    const before = snapshot(ca.dir);
    const list = path.join(ca.root, "list.txt");
    fs.writeFileSync(list, ["a1", "a2", "../escape", "a4"].join("\n"));
    const r = ca.run(["issue", "client", "--names-from", list, "--json"]);
    // the file's content is wrong, not the command line: bad input (exit 1), its line named
    expect(r.code).toBe(1);
    expect(json(r).error.code).toBe("BAD_INPUT");
    expect(json(r).error.message).toMatch(new RegExp(`^${list.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} line 3: .*\.\./`));
    // the same name twice, with a comment and a blank line before it: both lines named
    fs.writeFileSync(list, ["# agents", "a1", "", "a2", "a1"].join("\n"));
    const d = ca.run(["issue", "client", "--names-from", list]);
    expect(d.code).toBe(1);
    expect(d.stderr.trim()).toBe(`pki: error: ${list} line 5: the name "a1" is already on line 2: one certificate a name`);
    expect(snapshot(ca.dir)).toEqual(before);
  });

  it("a name that already holds a valid certificate fails the whole batch and changes nothing", () => {
    const ca = makeCa();
    expect(ca.run(["issue", "client", "taken"]).code).toBe(0);
    const before = snapshot(ca.dir);
    const list = path.join(ca.root, "list.txt");
    fs.writeFileSync(list, Array.from({ length: 30 }, (_, i) => `n${i}`).concat("taken").join("\n"));
    const r = ca.run(["issue", "client", "--names-from", list, "--json"]);
    expect(r.code).toBe(1);
    expect(json(r).error.code).toBe("NAME_EXISTS");
    expect(json(r).error.message).toContain("taken");
    expect(snapshot(ca.dir)).toEqual(before);
  });

  it("sign-csr with one bad CSR among many signs none of them", () => {
    const ca = makeCa();
    const csrs: string[] = [];
    for (let i = 0; i < 5; i++) {
      const f = path.join(ca.root, `host${i}.csr`);
      const g = openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path.join(ca.root, `host${i}.key`), "-subj", `/CN=host${i}`, "-out", f]);
      expect(g.code, g.stderr).toBe(0);
      csrs.push(f);
    }
    // a request whose signature does not match its content
    const pem = fs.readFileSync(csrs[3]!, "utf8");
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64");
    der[der.length - 5] ^= 0xff;
    fs.writeFileSync(csrs[3]!, `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`);
    const out = path.join(ca.root, "signed");
    fs.mkdirSync(out);
    const before = snapshot(ca.dir);
    const r = ca.run(["sign-csr", ...csrs, "--profile", "client", "--out-dir", out, "--json"]);
    expect(r.code).toBe(1);
    expect(json(r).ok).toBe(false);
    expect(snapshot(ca.dir)).toEqual(before);
    expect(fs.readdirSync(out)).toEqual([]);

    // the same batch without the bad one: one certificate per CSR, all verifying
    const good = csrs.filter((_, i) => i !== 3);
    const ok = ca.run(["sign-csr", ...good, "--profile", "client", "--out-dir", out, "--json"]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(json(ok).certificates).toHaveLength(4);
    const v = verifyAll(path.join(ca.dir, "ca.crt"), good.map((c) => path.join(out, path.basename(c, ".csr") + ".crt")));
    expect(v.ok, v.out).toBe(4);
  });
  it("writer threads are started for a batch, never for a single sign-csr or issue (a thread costs ~70 ms of a one-certificate command)", () => {
    const ca = makeCa();
    // node's own worker_threads.Worker, counted: a preload wraps it before bin/pki.js runs and
    // prints how many were constructed on exit (the threads still run and write for real)
    const preload = path.join(ca.root, "count-workers.cjs");
    fs.writeFileSync(
      preload,
      `const wt = require("node:worker_threads"); const Orig = wt.Worker; let n = 0;
wt.Worker = class extends Orig { constructor(...a) { n++; super(...a); } };
process.on("exit", () => process.stderr.write("workers=" + n + "\\n"));\n`,
    );
    const run = (args: string[]) => {
      const r = spawnSync(process.execPath, ["--require", preload, BIN, "--dir", ca.dir, "--passphrase-file", ca.pass, ...args], { env: cleanEnv(), encoding: "utf8" });
      return { code: r.status, workers: Number(/workers=(\d+)/.exec(r.stderr)?.[1]), stderr: r.stderr };
    };
    const csr = path.join(ca.root, "one.csr");
    expect(openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path.join(ca.root, "one.key"), "-subj", "/CN=one", "-out", csr]).code).toBe(0);
    const one = run(["sign-csr", csr, "--profile", "client", "--out", path.join(ca.root, "one.crt")]);
    expect(one.code, one.stderr).toBe(0);
    expect(one.workers).toBe(0);
    const out1 = path.join(ca.root, "out1");
    fs.mkdirSync(out1);
    const pair = run(["issue", "client", "single", "--out-dir", out1]);
    expect(pair.code, pair.stderr).toBe(0);
    expect(pair.workers).toBe(0);
    const list = path.join(ca.root, "batch.txt");
    fs.writeFileSync(list, Array.from({ length: 100 }, (_, i) => `w-${i}`).join("\n"));
    const outN = path.join(ca.root, "outN");
    fs.mkdirSync(outN);
    const batch = run(["issue", "client", "--names-from", list, "--out-dir", outN]);
    expect(batch.code, batch.stderr).toBe(0);
    expect(batch.workers).toBeGreaterThan(0);
    expect(fs.readdirSync(outN)).toHaveLength(300);
  });
  it("an --out-dir file that is a symlink, a directory or a FIFO late in a batch is refused like the first (the directory is listed once, not looked up name by name)", () => {
    const ca = makeCa();
    const list = path.join(ca.root, "late.txt");
    fs.writeFileSync(list, Array.from({ length: 100 }, (_, i) => `n-${String(i).padStart(3, "0")}`).join("\n"));
    const out = path.join(ca.root, "late-out");
    fs.mkdirSync(out);
    const before = snapshot(ca.dir);
    const key = fs.readFileSync(path.join(ca.dir, "private", "ca.key"));
    const cases: Array<[string, () => void, RegExp]> = [
      ["n-080.key", () => fs.symlinkSync(path.join(ca.dir, "private", "ca.key"), path.join(out, "n-080.key")), /n-080\.key is a symbolic link/],
      ["n-090.crt", () => fs.mkdirSync(path.join(out, "n-090.crt")), /n-090\.crt is a directory/],
      ["n-099.chain.crt", () => expect(spawnSync("mkfifo", [path.join(out, "n-099.chain.crt")]).status).toBe(0), /n-099\.chain\.crt is a FIFO/],
    ];
    for (const [name, make, refusal] of cases) {
      make();
      const r = ca.run(["issue", "client", "--names-from", list, "--out-dir", out]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(refusal);
      expect(fs.readdirSync(out), name).toEqual([name]);
      expect(snapshot(ca.dir)).toEqual(before);
      fs.rmSync(path.join(out, name), { recursive: true });
    }
    expect(fs.readFileSync(path.join(ca.dir, "private", "ca.key"))).toEqual(key);
  });
  it("files staged while the batch is still being signed: a write that fails part-way (a file size limit) leaves no file, no temporary and no record", () => {
    const ca = makeCa();
    const list = path.join(ca.root, "list.txt");
    // 70 pairs: a batch (>= 64) whose records' copies in certs/ are staged as they are signed too
    fs.writeFileSync(list, Array.from({ length: 70 }, (_, i) => `fd${i}`).join("\n"));
    const p12pass = path.join(ca.root, "p12.pass");
    fs.writeFileSync(p12pass, "p12 passphrase 1234\n", { mode: 0o600 });
    const before = snapshot(ca.dir);
    // the real limit, not a simulation: with RLIMIT_FSIZE at 1 KiB (and SIGXFSZ ignored, so that
    // write(2) fails with EFBIG), each pair's key, certificate and chain are written, its
    // PKCS#12 (~1.5 KiB; compat: its PBKDF2 is cheap) is not: the first pair's files are staged, the writer thread fails on its .p12
    const out = path.join(ca.root, "out");
    fs.mkdirSync(out);
    const r = spawnSync("bash", ["-c", `trap '' XFSZ; ulimit -f 1 && exec "$0" "$@"`, process.execPath, BIN, "--dir", ca.dir, "--passphrase-file", ca.pass, "issue", "client", "--names-from", list, "--out-dir", out, "--p12", "--p12-format", "compat", "--p12-passphrase-file", p12pass], { encoding: "utf8", env: cleanEnv() });
    expect(r.status, r.stderr).toBe(1);
    // the first pair's .p12: its key, certificate and chain (and its record's copy in certs/) were staged before
    expect(r.stderr).toMatch(/^pki: error: cannot write .*\/fd0\.p12: \(EFBIG\)\n$/);
    expect(fs.readdirSync(out)).toEqual([]);
    expect(snapshot(ca.dir)).toEqual(before);
    expect(fs.readdirSync(ca.dir).filter((f) => f.includes(".tmp") || f.startsWith(".")), r.stderr).toEqual([]);
    expect(fs.readdirSync(path.join(ca.dir, "certs")), "no staged copy of a record is left").toEqual([]);
  });

  it("Ctrl-C (SIGINT) while a batch is signed and its files staged: the temporaries go, nothing is recorded, the signal ends pki", async () => {
    const { ca, list, out } = bulkFixture(4000, "int");
    const before = snapshot(ca.dir);
    const child = spawn(process.execPath, [BIN, "--dir", ca.dir, "--passphrase-file", ca.pass, "issue", "client", "--names-from", list, "--out-dir", out], { env: cleanEnv(), stdio: "ignore" });
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on("exit", (code, signal) => res({ code, signal })));
    // as soon as the first staged files exist (temporary names, hidden)
    await until(out, (f) => f.endsWith(".tmp"));
    expect(fs.readdirSync(out).some((f) => f.endsWith(".tmp")), "no file was staged").toBe(true);
    child.kill("SIGINT");
    const r = await ended;
    expect(r.signal).toBe("SIGINT");
    expect(fs.readdirSync(out)).toEqual([]);
    // the lock of a process that is gone stays until the next command takes it over
    expect(snapshot(ca.dir, ["audit.log", ".lock"])).toEqual(before);
    const next = ca.run(["issue", "client", "after-interrupt", "--out-dir", out]);
    expect(next.code, next.stderr).toBe(0);
  });

  it("a file that cannot be put in place after the index commit: the error says how many were recorded and lists them to revoke; audit says partial", async () => {
    const { ca, list, out } = bulkFixture(3000, "late");
    const child = spawn(process.execPath, [BIN, "--dir", ca.dir, "--passphrase-file", ca.pass, "--json", "issue", "client", "--names-from", list, "--out-dir", out], { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const ended = new Promise<number | null>((res) => child.on("close", (code) => res(code)));
    // once late5.key is staged (a hidden temporary), a directory takes its name: its release, after the
    // index commit of all 3,000, fails (rename onto a directory)
    await until(out, (f) => f.startsWith(".late5.key."));
    fs.mkdirSync(path.join(out, "late5.key"));
    const code = await ended;
    expect(code, stderr).toBe(1);
    const err = JSON.parse(stdout);
    expect(err.error.code).toBe("IO_ERROR");
    expect(err.error.message).toMatch(/^the index records 3000 new certificate\(s\) \([0-9A-F]+, [0-9A-F]+, [0-9A-F]+ and 2997 more\), but their files could not all be put in place: .*late5\.key.*revoke it/);
    expect(err.committed.issued).toHaveLength(3000);
    // what it says is what the index holds
    const valid = fs.readFileSync(path.join(ca.dir, "index.txt"), "utf8").split("\n").filter((l) => l.startsWith("V")).map((l) => l.split("\t")[3]);
    expect(new Set(valid)).toEqual(new Set(err.committed.issued));
    const audit = fs.readFileSync(path.join(ca.dir, "audit.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l)).pop();
    expect(audit).toMatchObject({ outcome: "partial", error: "IO_ERROR" });
    expect(audit.committed.issued).toHaveLength(3000);
    // the directory is left alone; no temporary is left behind
    expect(fs.statSync(path.join(out, "late5.key")).isDirectory()).toBe(true);
    expect(fs.readdirSync(out).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    // and what it says to do works
    const rev = ca.run(["revoke", ...err.committed.issued.slice(0, 3)]);
    expect(rev.code, rev.stderr).toBe(0);
  }, 120_000);
});

/** n revoked index lines, every third with keyCompromise. */
function revokedLines(n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) {
    const serial = "4" + (i % 10) + i.toString(16).toUpperCase().padStart(32, "0");
    s += `R\t351231235959Z\t250601120000Z${i % 3 === 1 ? ",keyCompromise" : ""}\t${serial}\tunknown\t/CN=agent-${i}\n`;
  }
  return s;
}

describe("a CRL with 100,000 revoked entries (core/ca functions)", () => {
  it("is accepted by openssl crl -CAfile and lists every entry with its reason", async () => {
    const ca = makeCa();
    fs.writeFileSync(path.join(ca.dir, "index.txt"), revokedLines(100_000));
    const authority = await openSigningAuthority(new DirStore(ca.dir), async () => PASSPHRASE);
    const crl = await buildCrl(authority, new CaDir(ca.dir).readIndexBuffer(), 7, new Date());
    expect(crl.revoked).toBe(100_000);
    const file = path.join(ca.root, "big.pem");
    fs.writeFileSync(file, crl.pemBytes);
    expect(crl.pem).toBe(fs.readFileSync(file, "utf8"));
    const v = openssl(["crl", "-in", file, "-noout", "-CAfile", path.join(ca.dir, "ca.crt")]);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout + v.stderr).toContain("verify OK");
    const text = openssl(["crl", "-in", file, "-noout", "-text"]).stdout;
    expect(text.match(/Serial Number:/g)).toHaveLength(100_000);
    expect(text.match(/Key Compromise/g)).toHaveLength(33_333);
    expect(text).toContain("Serial Number: 490000000000000000000000000001869F\n");
  });
});

describe("revokeSerials in a large index", () => {
  it("rewrites only the revoked line, re-signs the CRL, refuses unknown and repeated serials without changes", async () => {
    const ca = makeCa();
    const r = ca.run(["issue", "client", "victim", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const serial = json(r).serial as string;
    const indexPath = path.join(ca.dir, "index.txt");
    const victimLine = fs.readFileSync(indexPath, "utf8");
    const filler = revokedLines(20_000).split("\n").filter(Boolean);
    fs.writeFileSync(indexPath, [...filler.slice(0, 10_000), victimLine.trimEnd(), ...filler.slice(10_000)].join("\n") + "\n");
    const before = fs.readFileSync(indexPath, "utf8").split("\n");
    const authority = await openSigningAuthority(new DirStore(ca.dir), async () => PASSPHRASE);

    const snap = snapshot(ca.dir);
    await expect(revokeSerials(authority, authority, [{ serial: "0123ABCD", reason: "keyCompromise" }], new Date())).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(snapshot(ca.dir)).toEqual(snap);

    const res = await revokeSerials(authority, authority, [{ serial, reason: "keyCompromise" }], new Date());
    expect(res.revoked[0]!.subject).toBe("/CN=victim");
    const after = fs.readFileSync(indexPath, "utf8").split("\n");
    expect(after).toHaveLength(before.length);
    const changed = after.map((l, i) => (l === before[i] ? -1 : i)).filter((i) => i >= 0);
    expect(changed).toHaveLength(1);
    expect(after[changed[0]!]).toMatch(new RegExp(`^R\\t\\d{12}Z\\t\\d{12}Z,keyCompromise\\t${serial}\\tunknown\\t/CN=victim$`));

    const v = openssl(["crl", "-in", path.join(ca.dir, "crl.pem"), "-noout", "-CAfile", path.join(ca.dir, "ca.crt")]);
    expect(v.stdout + v.stderr).toContain("verify OK");
    const text = openssl(["crl", "-in", path.join(ca.dir, "crl.pem"), "-noout", "-text"]).stdout;
    expect(text.match(/Serial Number:/g)!.length).toBe(20_000 + 1);
    expect(text).toContain(`Serial Number: ${serial}`);
    const status = openssl(["verify", "-crl_check", "-CAfile", path.join(ca.dir, "ca.crt"), "-CRLfile", path.join(ca.dir, "crl.pem"), path.join(ca.dir, "issued", "victim.crt")]);
    expect(status.code).not.toBe(0);
    expect(status.stdout + status.stderr).toContain("certificate revoked");

    const snap2 = snapshot(ca.dir);
    await expect(revokeSerials(authority, authority, [{ serial, reason: "superseded" }], new Date())).rejects.toMatchObject({ code: "ALREADY_REVOKED" });
    expect(snapshot(ca.dir)).toEqual(snap2);
  });
});
