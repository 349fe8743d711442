/**
 * Regression tests for findings of the code review before the first release.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { FIXTURES, json, makeCa, pki, snapshot } from "../helpers.js";

const csr = path.join(FIXTURES, "csr", "p256-san.csr");

describe("review findings", () => {
  it("sign-csr --out pointing at a directory fails before signing and leaves the CA directory unchanged", () => {
    const ca = makeCa();
    const outDir = path.join(ca.root, "somedir");
    fs.mkdirSync(outDir);
    const before = snapshot(ca.dir);
    const r = ca.run(["sign-csr", csr, "--profile", "ssl", "--out", outDir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^pki: error: .*is a directory/);
    expect(snapshot(ca.dir)).toEqual(before);
    expect(fs.readdirSync(path.join(ca.dir, "certs"))).toEqual([]);
    expect(ca.run(["doctor"]).code).toBe(0);
  });

  it("a mistyped --passphrase=VALUE is a usage error that does not print the value", () => {
    const r = pki(["--passphrase=hunter2-secret", "list"]);
    expect(r.code).toBe(2);
    expect(r.stderr + r.stdout).not.toContain("hunter2-secret");
    expect(r.stderr).toMatch(/unknown option '--passphrase=…'/);
  });

  it("nginx-config --snippet --allow-list says where it wrote the map, as without --snippet", () => {
    const ca = makeCa();
    ca.run(["issue", "client", "agent"]);
    const r = ca.run(["nginx-config", "--snippet", "--allow-list", "client"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`wrote ${path.join(ca.dir, "nginx-allow.map")}`);
    expect(fs.readFileSync(path.join(ca.dir, "nginx-allow.map"), "utf8")).toMatch(/ 1;/);
  });

  it("list --expiring lists what needs renewing: valid certificates only", () => {
    const ca = makeCa();
    ca.run(["issue", "client", "keep", "--days", "10"]);
    ca.run(["issue", "client", "gone", "--days", "10"]);
    expect(ca.run(["revoke", "gone"]).code).toBe(0);
    const d = json(ca.run(["list", "--expiring", "30", "--json"]));
    expect(d.certificates.map((c: { name: string }) => c.name)).toEqual(["keep"]);
  });

  it("a refused export p12 is audited under the command's full name", () => {
    const ca = makeCa();
    const r = ca.run(["export", "p12", "nobody", "--p12-passphrase-file", ca.pass]);
    expect(r.code).toBe(1);
    const lines = fs.readFileSync(path.join(ca.dir, "audit.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.at(-1)).toMatchObject({ command: "export p12", outcome: "refused" });
  });
});
