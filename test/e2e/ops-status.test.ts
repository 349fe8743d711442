/**
 * Expiry you can monitor (issue 16): `pki status` lists everything that
 * expires, `--fail-within` makes it a check, `--metrics` writes a Prometheus
 * textfile (checked here by a strict parser of the text format), and
 * `pki renew --due` renews what is due. Dates are compared with what
 * `openssl` reads from the files.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { BIN, json, makeCa, openssl, pki, ROOT, snapshot, tmpdir } from "../helpers.js";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * The Prometheus text exposition format (version 0.0.4), strictly: HELP and
 * TYPE comments, samples `name{label="value",...} value`, label values with
 * \\, \" and \n escapes. Throws on anything else, on a sample without a TYPE
 * declared before it, and on a duplicate series.
 */
function parseProm(text: string): { samples: Sample[]; types: Map<string, string>; help: Map<string, string> } {
  expect(text.endsWith("\n")).toBe(true);
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  const seen = new Set<string>();
  const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  for (const line of text.slice(0, -1).split("\n")) {
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
      if (!m) throw new Error(`bad comment line: ${line}`);
      if (m[1] === "TYPE") {
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(m[3]!)) throw new Error(`bad type: ${line}`);
        if (types.has(m[2]!)) throw new Error(`second TYPE for ${m[2]}`);
        types.set(m[2]!, m[3]!);
      } else help.set(m[2]!, m[3]!);
      continue;
    }
    if (line.trim() === "") throw new Error("empty line");
    let i = 0;
    while (i < line.length && /[a-zA-Z0-9_:]/.test(line[i]!)) i++;
    const name = line.slice(0, i);
    if (!NAME.test(name)) throw new Error(`bad metric name in: ${line}`);
    const labels: Record<string, string> = {};
    if (line[i] === "{") {
      i++;
      while (line[i] !== "}") {
        const start = i;
        while (/[a-zA-Z0-9_]/.test(line[i]!)) i++;
        const key = line.slice(start, i);
        if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(key) || line[i] !== "=" || line[i + 1] !== '"') throw new Error(`bad label in: ${line}`);
        i += 2;
        let v = "";
        for (;;) {
          const c = line[i++];
          if (c === undefined) throw new Error(`unterminated label value in: ${line}`);
          if (c === '"') break;
          if (c === "\\") {
            const e = line[i++];
            if (e === "n") v += "\n";
            else if (e === "\\" || e === '"') v += e;
            else throw new Error(`bad escape in: ${line}`);
          } else v += c;
        }
        if (key in labels) throw new Error(`duplicate label ${key}`);
        labels[key] = v;
        if (line[i] === ",") i++;
        else if (line[i] !== "}") throw new Error(`bad label list in: ${line}`);
      }
      i++;
    }
    const rest = line.slice(i);
    const m = /^ (-?[0-9.e+]+|NaN|[+-]Inf)( -?[0-9]+)?$/.exec(rest);
    if (!m) throw new Error(`bad value in: ${line}`);
    if (!types.has(name)) throw new Error(`sample ${name} without a TYPE before it`);
    const key = name + JSON.stringify(Object.entries(labels).sort());
    if (seen.has(key)) throw new Error(`duplicate series ${key}`);
    seen.add(key);
    samples.push({ name, labels, value: Number(m[1]) });
  }
  return { samples, types, help };
}

const enddate = (file: string) => Math.floor(new Date(openssl(["x509", "-in", file, "-noout", "-enddate"]).stdout.trim().replace("notAfter=", "")).getTime() / 1000);
const crlNext = (file: string) => Math.floor(new Date(openssl(["crl", "-in", file, "-noout", "-nextupdate"]).stdout.trim().replace("nextUpdate=", "")).getTime() / 1000);

let ca: ReturnType<typeof makeCa>;
let parent: ReturnType<typeof makeCa>;

beforeAll(() => {
  ca = makeCa(["--crl-days", "30"]);
  for (const [profile, name, days] of [["server", "web1", "200"], ["client", "alice", "5"], ["client", "bob", "300"]] as const) {
    const r = ca.run(["issue", profile, name, "--days", days]);
    expect(r.code, r.stderr).toBe(0);
  }
  expect(ca.run(["revoke", "bob"]).code).toBe(0);
  // the OCSP responder certificate is the issued name ocsp-responder (pki serve)
  expect(ca.run(["issue", "server", "ocsp-responder", "--days", "20"]).code).toBe(0);
  // an issuing CA keeps its parent's certificate and CRL beside its own
  // (a quote and a backslash in its name: label values must be escaped)
  parent = makeCa(["--crl-days", "3", "--cn", 'Parent "Q" CA\\1'], "pki-parent-");
  fs.copyFileSync(path.join(parent.dir, "ca.crt"), path.join(ca.dir, "parent.crt"));
  fs.copyFileSync(path.join(parent.dir, "crl.pem"), path.join(ca.dir, "parent-crl.pem"));
});

describe("pki status", () => {
  it("lists the CA, the parent, both CRLs, the responder and every certificate, soonest first", () => {
    const r = ca.run(["status", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const d = json(r);
    expect(d.ok).toBe(true);
    const by = (kind: string, name: string) => d.items.find((i: { kind: string; name: string }) => i.kind === kind && i.name === name);
    expect(Math.floor(Date.parse(by("ca", "ca").notAfter) / 1000)).toBe(enddate(path.join(ca.dir, "ca.crt")));
    expect(by("ca", "parent").subject).toMatch(/Parent "Q" CA\\+1/);
    expect(Math.floor(Date.parse(by("crl", "crl").notAfter) / 1000)).toBe(crlNext(path.join(ca.dir, "crl.pem")));
    expect(Math.floor(Date.parse(by("crl", "parent-crl").notAfter) / 1000)).toBe(crlNext(path.join(ca.dir, "parent-crl.pem")));
    expect(by("responder", "ocsp-responder").status).toBe("valid");
    expect(by("certificate", "alice").daysLeft).toBe(4);
    expect(by("certificate", "bob").status).toBe("revoked");
    expect(Math.floor(Date.parse(by("certificate", "web1").notAfter) / 1000)).toBe(enddate(path.join(ca.dir, "issued", "web1.crt")));
    expect(d.counts).toEqual({ valid: 3, revoked: 1, expired: 0 });
    const times = d.items.map((i: { notAfter: string }) => Date.parse(i.notAfter));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    // the table: one line per item plus the header
    const t = ca.run(["status"]);
    expect(t.stdout.trim().split("\n")).toHaveLength(d.items.length + 1);
    expect(t.stdout).toMatch(/^KIND\s+STATUS\s+NOT AFTER/);
  });

  it("--fail-within: exit 1 (EXPIRING) naming what is due; revoked certificates never count", () => {
    const quiet = ca.run(["status", "--fail-within", "2"]);
    expect(quiet.code, quiet.stderr).toBe(0);
    const r = ca.run(["status", "--fail-within", "5", "--json"]);
    expect(r.code).toBe(1);
    const d = json(r);
    expect(d.ok).toBe(false);
    expect(d.error.code).toBe("EXPIRING");
    const due = d.items.filter((i: { due: boolean }) => i.due).map((i: { name: string }) => i.name);
    expect(due.sort()).toEqual(["alice", "parent-crl"]);
    const human = ca.run(["status", "--fail-within", "5"]);
    expect(human.code).toBe(1);
    expect(human.stderr).toMatch(/^pki: error: 2 item\(s\) expire within 5 day\(s\): .*alice/m);
    // the responder (20 days) is due at 25, bob (revoked) never
    const wide = json(ca.run(["status", "--fail-within", "25", "--json"]));
    expect(wide.items.filter((i: { due: boolean }) => i.due).map((i: { name: string }) => i.name).sort()).toEqual(["alice", "ocsp-responder", "parent-crl"]);
  });

  it("a fresh CA with the default 7-day CRL passes the shipped unit's --fail-within 14 (the CRL timer keeps it fresh)", () => {
    const fresh = makeCa();
    const r = fresh.run(["status", "--fail-within", "14", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r).items.find((i: { kind: string; name: string }) => i.kind === "crl" && i.name === "crl").due).toBe(false);
    const unit = fs.readFileSync(path.join(ROOT, "templates", "systemd", "pki-status.service"), "utf8");
    expect(unit).toContain("--fail-within 14");
    expect(unit).toContain("Install as pki-status.service");
  });

  it("--metrics writes a Prometheus textfile a strict parser accepts, with the files' own dates", () => {
    const out = path.join(ca.root, "pki.prom");
    const r = ca.run(["status", "--metrics", out]);
    expect(r.code, r.stderr).toBe(0);
    const { samples, types } = parseProm(fs.readFileSync(out, "utf8"));
    for (const n of ["pki_certificate_not_after_seconds", "pki_crl_next_update_seconds", "pki_ca_not_after_seconds", "pki_certificates"]) expect(types.get(n)).toBe("gauge");
    const certs = samples.filter((s) => s.name === "pki_certificate_not_after_seconds");
    // valid ones only (an alert on a revoked certificate would never clear)
    expect(certs.map((s) => s.labels.name).sort()).toEqual(["alice", "ocsp-responder", "web1"]);
    const web1 = certs.find((s) => s.labels.name === "web1")!;
    expect(web1.labels.profile).toBe("server");
    expect(web1.labels.serial).toBe(openssl(["x509", "-in", path.join(ca.dir, "issued", "web1.crt"), "-noout", "-serial"]).stdout.trim().replace("serial=", ""));
    expect(web1.value).toBe(enddate(path.join(ca.dir, "issued", "web1.crt")));
    const crls = samples.filter((s) => s.name === "pki_crl_next_update_seconds");
    expect(crls.find((s) => s.labels.name === "crl")!.value).toBe(crlNext(path.join(ca.dir, "crl.pem")));
    expect(crls.find((s) => s.labels.name === "parent-crl")!.value).toBe(crlNext(path.join(ca.dir, "parent-crl.pem")));
    expect(samples.find((s) => s.name === "pki_ca_not_after_seconds" && s.labels.name === "ca")!.value).toBe(enddate(path.join(ca.dir, "ca.crt")));
    const count = (st: string) => samples.find((s) => s.name === "pki_certificates" && s.labels.status === st)!.value;
    expect([count("valid"), count("revoked"), count("expired")]).toEqual([3, 1, 0]);
    expect(samples.find((s) => s.name === "pki_ca_not_after_seconds" && s.labels.name === "parent")!.labels.subject).toMatch(/Parent "Q" CA\\+1/);
    for (const s of samples) expect(s.labels.dir).toBe(ca.dir);
  });

  it("--metrics replaces the file atomically (a new inode, no temporary left) and refuses a symlink or a CA file", () => {
    const dir = path.join(ca.root, "textfile");
    fs.mkdirSync(dir);
    const out = path.join(dir, "pki.prom");
    fs.writeFileSync(out, "old\n");
    const before = fs.statSync(out).ino;
    expect(ca.run(["status", "--metrics", out, "--fail-within", "5"]).code).toBe(1); // written even when something is due
    expect(fs.statSync(out).ino).not.toBe(before);
    expect(fs.readdirSync(dir)).toEqual(["pki.prom"]);
    expect(fs.statSync(out).mode & 0o777).toBe(0o644);

    const link = path.join(dir, "link.prom");
    fs.symlinkSync(path.join(ca.root, "elsewhere"), link);
    const snap = snapshot(ca.dir);
    for (const bad of [link, path.join(ca.dir, "index.txt"), path.join(ca.dir, "crl.pem"), path.join(ca.dir, "private", "x.prom")]) {
      const r = ca.run(["status", "--metrics", bad]);
      expect(r.code, bad).toBe(1);
      expect(r.stderr).toMatch(/^pki: error: --metrics /);
    }
    expect(fs.existsSync(path.join(ca.root, "elsewhere"))).toBe(false);
    expect(snapshot(ca.dir)).toEqual(snap);
  });
});

describe("pki renew --due", () => {
  it("renews the issued names expiring within the window (same key, old one superseded), then nothing", () => {
    const c = makeCa(["--crl-days", "30"]);
    for (const [name, days] of [["soon", "10"], ["later", "100"]] as const) expect(c.run(["issue", "client", name, "--days", days]).code).toBe(0);
    const oldSerial = openssl(["x509", "-in", path.join(c.dir, "issued", "soon.crt"), "-noout", "-serial"]).stdout.trim().replace("serial=", "");
    const laterBefore = fs.readFileSync(path.join(c.dir, "issued", "later.crt"), "utf8");
    const r = c.run(["renew", "--due", "30", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const d = json(r);
    expect(d.renewed).toHaveLength(1);
    expect(d.renewed[0].name).toBe("soon");
    expect(d.renewed[0].previousSerial).toBe(oldSerial);
    const cert = path.join(c.dir, "issued", "soon.crt");
    expect(enddate(cert) - Math.floor(Date.now() / 1000)).toBeGreaterThan(300 * 86400);
    // the same key: the renewed certificate matches private/soon.key
    const pub = (args: string[]) => openssl(args).stdout;
    expect(pub(["x509", "-in", cert, "-noout", "-pubkey"])).toBe(pub(["pkey", "-in", path.join(c.dir, "private", "soon.key"), "-pubout"]));
    expect(openssl(["verify", "-CAfile", path.join(c.dir, "ca.crt"), cert]).code).toBe(0);
    const crl = openssl(["crl", "-in", path.join(c.dir, "crl.pem"), "-noout", "-text"]).stdout;
    expect(crl).toContain(`Serial Number: ${oldSerial}`);
    expect(crl).toContain("Superseded");
    expect(fs.readFileSync(path.join(c.dir, "issued", "later.crt"), "utf8")).toBe(laterBefore);
    const again = c.run(["renew", "--due", "30", "--json"]);
    expect(json(again).renewed).toEqual([]);
    const human = c.run(["renew", "--due", "30"]);
    expect(human.stderr).toContain("Nothing is due");
  });

  it("--due with a target, or with --rekey, is a usage error; renew with neither names the flag", () => {
    const c = makeCa();
    expect(c.run(["renew", "x", "--due", "3"]).code).toBe(2);
    expect(c.run(["renew", "--due", "3", "--rekey"]).code).toBe(2);
    const r = c.run(["renew"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--due");
  });
});

describe("the shipped systemd units", () => {
  const unitsDir = path.join(ROOT, "templates", "systemd");
  const units = ["pki-crl", "pki-status", "pki-renew"];

  it("name no fixed install path: @PKI@ is replaced by the installed pki (command -v pki, else the npm prefix)", () => {
    for (const u of units) {
      const text = fs.readFileSync(path.join(unitsDir, `${u}.service`), "utf8");
      expect(text).not.toContain("/usr/local/bin/pki");
      expect(text).toMatch(/^ExecStart=@PKI@ /m);
      expect(text).toContain('PKI_BIN=$(command -v pki || echo "$(npm prefix -g)/bin/pki")');
      expect(fs.existsSync(path.join(unitsDir, `${u}.timer`))).toBe(true);
    }
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    expect(readme).toContain('PKI_BIN=$(command -v pki || echo "$(npm prefix -g)/bin/pki")');
    expect(readme).toContain('sed "s|@PKI@|$PKI_BIN|g"');
  });

  it("pki-serve.service too: @PKI@, and it verifies", () => {
    const text = fs.readFileSync(path.join(unitsDir, "pki-serve.service"), "utf8");
    expect(text).toMatch(/^ExecStart=@PKI@ serve /m);
    const dest = tmpdir("pki-units-");
    fs.writeFileSync(path.join(dest, "pki-serve.service"), text.replaceAll("@PKI@", BIN));
    const v = spawnSync("systemd-analyze", ["verify", path.join(dest, "pki-serve.service")], { encoding: "utf8" });
    expect(v.stderr).not.toMatch(/not executable|Unknown|Invalid/i);
    expect(v.status, v.stderr).toBe(0);
  });

  it("pass `systemd-analyze verify` once installed as the README says", () => {
    const which = spawnSync("sh", ["-c", "command -v systemd-analyze"]);
    expect(which.status, "systemd-analyze is needed for this test: apt-get install systemd").toBe(0);
    const dest = tmpdir("pki-units-");
    for (const u of units) {
      for (const ext of ["service", "timer"]) {
        const f = `${u}.${ext}`;
        const r = spawnSync("sh", ["-c", `sed "s|@PKI@|$PKI_BIN|g" "$SRC" > "$DEST"`], { env: { ...process.env, PKI_BIN: BIN, SRC: path.join(unitsDir, f), DEST: path.join(dest, f) } });
        expect(r.status).toBe(0);
      }
      const v = spawnSync("systemd-analyze", ["verify", path.join(dest, `${u}.service`), path.join(dest, `${u}.timer`)], { encoding: "utf8" });
      expect(v.stderr, u).not.toMatch(/not executable|Unknown|Invalid|Failed|bad/i);
      expect(v.status, v.stderr).toBe(0);
    }
  });

  it("their ExecStart lines run cleanly on a CA (exit 0, nothing on stderr), with the paths pointed at the test CA", () => {
    const c = makeCa(["--crl-days", "30"]);
    expect(c.run(["issue", "server", "web1", "--days", "10"]).code).toBe(0);
    const metrics = path.join(c.root, "pki.prom");
    for (const u of units) {
      const text = fs.readFileSync(path.join(unitsDir, `${u}.service`), "utf8");
      const exec = /^ExecStart=@PKI@ (.*)$/m.exec(text)![1]!.replace("/var/lib/prometheus/node-exporter/pki.prom", metrics).split(" ");
      const env = Object.fromEntries([...text.matchAll(/^Environment=(PKI_[A-Z_]+)=/gm)].map((m) => [m[1]!, m[1] === "PKI_DIR" ? c.dir : c.pass]));
      const r = pki(exec, { env });
      // pki-status fails while web1 (10 days) is within its 14-day window, until pki-renew has run
      if (u === "pki-status") {
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(/^pki: error: .*web1/);
        continue;
      }
      expect(r.code, `${u}: ${r.stderr}`).toBe(0);
      expect(r.stderr, u).toBe("");
    }
    const after = pki(/^ExecStart=@PKI@ (.*)$/m.exec(fs.readFileSync(path.join(unitsDir, "pki-status.service"), "utf8"))![1]!.replace("/var/lib/prometheus/node-exporter/pki.prom", metrics).split(" "), { env: { PKI_DIR: c.dir } });
    expect(after.code, after.stderr).toBe(0);
    expect(after.stderr).toBe("");
    expect(fs.readFileSync(metrics, "utf8")).toContain('name="web1"');
  });
});
