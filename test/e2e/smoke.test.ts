import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { json, makeCa, openssl } from "../helpers.js";

describe("smoke: init, issue, sign-csr judged by openssl", () => {
  it("issues a server pair that openssl verifies for sslserver", () => {
    const ca = makeCa();
    const r = ca.run(["issue", "server", "web1", "--san", "dns:web1.example.lan", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const d = json(r);
    expect(d.ok).toBe(true);
    expect(fs.existsSync(d.cert)).toBe(true);
    const v = openssl(["verify", "-CAfile", path.join(ca.dir, "ca.crt"), "-purpose", "sslserver", d.cert]);
    expect(v.stdout).toContain(": OK");
    expect(v.code).toBe(0);
  });
});
