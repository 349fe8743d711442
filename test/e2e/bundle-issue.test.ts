import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { json, makeCa } from "../helpers.js";

const count = (p: string) => (fs.readFileSync(p, "utf8").match(/BEGIN CERTIFICATE/g) ?? []).length;

describe("a bundle that lists issued certificates stays current", () => {
  it("pki issue and sign-csr add the new certificate to ca-clients.crt; revoke removes it", () => {
    const ca = makeCa();
    const bundle = path.join(ca.dir, "ca-clients.crt");
    expect(ca.run(["bundle", "--include-issued", "client"]).code).toBe(0);
    expect(count(bundle)).toBe(1);
    const a = json(ca.run(["issue", "client", "agent-a", "--json"]));
    expect(count(bundle)).toBe(2);
    ca.run(["issue", "server", "web", "--san", "dns:web.lan"]);
    expect(count(bundle)).toBe(2); // another profile: not listed
    expect(fs.readFileSync(bundle, "utf8")).toContain(fs.readFileSync(a.cert, "utf8").trim());
    expect(ca.run(["revoke", "agent-a"]).code).toBe(0);
    expect(count(bundle)).toBe(1);
    expect(ca.run(["doctor"]).code).toBe(0);
  });
});
