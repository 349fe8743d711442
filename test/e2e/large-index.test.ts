/**
 * A CA with a large index (300,000 certificates, about as many as a fleet
 * that re-keys weekly gathers in years): `pki list` and `pki status` print a
 * row for each. Their tables once spread every row into Math.max for the
 * column widths, which overflows the stack past ~120,000 rows ("Maximum call
 * stack size exceeded"). The rows are compared with the index, so that a
 * table cut short fails too.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { makeCa } from "../helpers.js";

const N = 300_000;

describe("a 300,000-certificate index", () => {
  let ca: ReturnType<typeof makeCa>;
  beforeAll(() => {
    ca = makeCa();
    // valid, revoked and expired lines as openssl ca writes them; subjects that need RFC 2253 escapes here and there
    const fd = fs.openSync(path.join(ca.dir, "index.txt"), "w");
    let s = "";
    for (let i = 0; i < N; i++) {
      const serial = (0x100000 + i).toString(16).toUpperCase().padStart(8, "0");
      const cn = i % 1000 === 7 ? `agent, ${i}` : `agent-${i}`;
      s += i % 3 === 0 ? `R\t351231235959Z\t250601120000Z,keyCompromise\t${serial}\tunknown\t/O=Acme/CN=${cn}\n` : i % 3 === 1 ? `V\t351231235959Z\t\t${serial}\tunknown\t/O=Acme/CN=${cn}\n` : `E\t200101000000Z\t\t${serial}\tunknown\t/O=Acme/CN=${cn}\n`;
      if (s.length > 1 << 20) {
        fs.writeSync(fd, s);
        s = "";
      }
    }
    fs.writeSync(fd, s);
    fs.closeSync(fd);
  }, 120_000);

  it("pki list prints a row for each, widths and all", () => {
    const r = ca.run(["--dir", ca.dir, "list"], { timeout: 120_000 });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines.length).toBe(N + 1);
    expect(lines[0]).toMatch(/^SERIAL +STATUS +PROFILE +NAME +NOT AFTER +SUBJECT$/);
    expect(lines[1]).toMatch(/^00100000 +revoked +- +- +2035-12-31 +O=Acme, CN=agent-0$/);
    expect(lines[N]).toMatch(new RegExp(`^${(0x100000 + N - 1).toString(16).toUpperCase().padStart(8, "0")} +expired `));
    // every column padded to the widest cell: the NOT AFTER dates start at one offset on every row (revoked, valid, expired)
    const dateAt = (l: string) => /\d{4}-\d{2}-\d{2}/.exec(l)!.index;
    expect(new Set([...lines.slice(1, 1000), ...lines.slice(-1000)].map(dateAt))).toEqual(new Set([lines[0]!.indexOf("NOT AFTER")]));
  }, 180_000);

  it("pki list --format dn and --json agree with the index", () => {
    const dn = ca.run(["--dir", ca.dir, "list", "--format", "dn", "--status", "valid"], { timeout: 120_000 });
    expect(dn.code).toBe(0);
    const dns = dn.stdout.trimEnd().split("\n");
    expect(dns.length).toBe(N / 3);
    expect(dns[0]).toBe("CN=agent-1,O=Acme");
    expect(dns).toContain("CN=agent\\, 7,O=Acme");
    const js = ca.run(["--dir", ca.dir, "--json", "list", "--status", "revoked"], { timeout: 120_000 });
    expect(js.code).toBe(0);
    const certs = JSON.parse(js.stdout).certificates as { serial: string; revokedAt: string; notAfter: string; reason: string }[];
    expect(certs.length).toBe(N / 3);
    expect(certs[1]).toMatchObject({ serial: "00100003", revokedAt: "2025-06-01T12:00:00.000Z", notAfter: "2035-12-31T23:59:59.000Z", reason: "keyCompromise" });
  }, 180_000);

  it("pki status prints a row for each certificate and counts them", () => {
    const r = ca.run(["--dir", ca.dir, "status"], { timeout: 120_000 });
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    // header, the CA, its CRL, and the certificates
    expect(lines.length).toBe(N + 3);
    expect(lines[0]).toMatch(/^KIND +STATUS +NOT AFTER +DAYS +NAME +SERIAL +SUBJECT$/);
    const js = ca.run(["--dir", ca.dir, "--json", "status"], { timeout: 120_000 });
    expect(js.code).toBe(0);
    expect(JSON.parse(js.stdout).counts).toEqual({ valid: N / 3, revoked: N / 3, expired: N / 3 });
  }, 180_000);
});
