/**
 * Issue 5.7: the name policy of pki.json ("policy": per profile, the DNS
 * patterns, IP ranges, e-mail domains, URI prefixes and CNs that sign-csr
 * accepts). Inside: signed. Outside: POLICY_DENIED, nothing issued.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { json, makeCa, openssl, snapshot } from "../helpers.js";
import { indexLines, opensslCsr } from "../hardening-helpers.js";

type Ca = ReturnType<typeof makeCa>;
let ca: Ca;
let n = 0;

const POLICY = {
  server: { dns: ["*.agents.example.lan"], ip: ["10.20.0.0/16", "fd00:20::/32"] },
  client: { dns: ["*.agents.example.lan"], email: ["example.lan", ".corp.example.lan"] },
  "code-signing": { email: ["example.lan"], uri: ["spiffe://example.lan/"] },
  "*": { dns: ["*.example.lan"] },
};

beforeAll(() => {
  ca = makeCa();
  const p = path.join(ca.dir, "pki.json");
  fs.writeFileSync(p, JSON.stringify({ ...JSON.parse(fs.readFileSync(p, "utf8")), policy: POLICY }, null, 2));
});

const csr = (subj: string, san?: string) => opensslCsr(ca.root, `r${n++}`, subj, { san });

function signs(profile: string, file: string, extra: string[] = []): any {
  const r = ca.run(["sign-csr", file, "--profile", profile, "--json", ...extra]);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  const d = json(r);
  const v = openssl(["verify", "-CAfile", path.join(ca.dir, "ca.crt")], { input: d.certificate });
  expect(v.stdout).toContain("OK");
  return d;
}

function denied(profile: string, file: string, extra: string[] = [], what?: RegExp): void {
  const before = snapshot(ca.dir);
  const lines = indexLines(ca.dir).length;
  const r = ca.run(["sign-csr", file, "--profile", profile, "--json", ...extra]);
  expect(r.code, r.stdout).toBe(1);
  const d = json(r);
  expect(d.ok).toBe(false);
  expect(d.error.code).toBe("POLICY_DENIED");
  expect(d.error.message).toMatch(/outside the name policy for profile/);
  if (what) expect(d.error.message).toMatch(what);
  expect(d.certificate).toBeUndefined();
  // nothing issued: no index line, no certificate file, nothing else changed
  expect(indexLines(ca.dir)).toHaveLength(lines);
  expect(snapshot(ca.dir)).toEqual(before);
  const t = ca.run(["sign-csr", file, "--profile", profile, ...extra]);
  expect(t.code).toBe(1);
  expect(t.stdout).toBe("");
  expect(t.stderr).toMatch(/^pki: error: .*outside the name policy.*\n$/);
}

describe("name policy of sign-csr (pki.json \"policy\")", () => {
  it("signs an allowed DNS name, an IP in range and an e-mail domain", () => {
    const s = signs("server", csr("/CN=a1.agents.example.lan", "DNS:a1.agents.example.lan,IP:10.20.3.4,IP:fd00:20::5"));
    expect(s.san).toEqual(["dns:a1.agents.example.lan", "ip:10.20.3.4", "ip:fd00:20::5"]);
    const c = signs("client", csr("/CN=alice", "email:alice@example.lan"));
    expect(c.san).toEqual(["email:alice@example.lan"]);
    signs("client", csr("/CN=bob", "email:bob@eu.corp.example.lan,DNS:bob.agents.example.lan"));
    signs("code-signing", csr("/CN=carol@example.lan", "email:carol@example.lan,URI:spiffe://example.lan/carol"));
    // a profile without its own entry falls back to "*"
    signs("ssl", csr("/CN=box.example.lan", "DNS:box.example.lan"));
    // a CN that is the server's DNS name becomes its SAN, and is inside
    expect(signs("server", csr("/CN=a2.agents.example.lan")).san).toEqual(["dns:a2.agents.example.lan"]);
  });

  it("refuses every name outside, with POLICY_DENIED, and issues nothing", () => {
    denied("server", csr("/CN=x", "DNS:evil.example.com"), [], /dns:evil\.example\.com/);
    denied("server", csr("/CN=x", "DNS:a.b.agents.example.lan"), [], /a\.b\.agents/); // "*" is one label
    denied("server", csr("/CN=x", "DNS:agents.example.lan"));
    denied("server", csr("/CN=x", "DNS:a1.agents.example.lan,IP:10.21.0.1"), [], /ip:10\.21\.0\.1/);
    denied("server", csr("/CN=x", "DNS:a1.agents.example.lan,IP:fd00:21::1"));
    denied("server", csr("/CN=evil.example.com"), [], /evil\.example\.com/); // the CN would become the SAN
    denied("server", csr("/CN=evil.example.com", "DNS:a1.agents.example.lan"), [], /CN=evil\.example\.com/);
    denied("client", csr("/CN=alice", "email:alice@evil.lan"), [], /email:alice@evil\.lan/);
    denied("client", csr("/CN=alice", "email:alice@sub.example.lan")); // exact domain unless written ".domain"
    denied("client", csr("/CN=alice@evil.lan"));
    denied("code-signing", csr("/CN=carol@example.lan", "URI:spiffe://evil.lan/carol"));
    denied("ssl", csr("/CN=box.example.com", "DNS:box.example.com"));
  });

  it("applies to names given by flag too (--san, --cn)", () => {
    const ok = csr("/CN=a3.agents.example.lan", "DNS:a3.agents.example.lan");
    denied("server", ok, ["--san", "dns:evil.example.com"]);
    denied("server", ok, ["--san", "ip:192.168.1.1"]);
    denied("server", ok, ["--cn", "evil.example.com"]);
    signs("server", ok, ["--san", "dns:a4.agents.example.lan,ip:10.20.9.9"]);
  });

  it("records each refusal in audit.log", () => {
    const lines = fs.readFileSync(path.join(ca.dir, "audit.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const refused = lines.filter((l) => l.command === "sign-csr" && l.outcome === "refused");
    expect(refused.length).toBeGreaterThanOrEqual(15 * 2);
    expect(refused.every((l) => l.error === "POLICY_DENIED" && /^[0-9a-f]{64}$/.test(l.csrSha256))).toBe(true);
  });

  it("a malformed policy is a clear CA_INVALID, not a silent allow-all", () => {
    const other = makeCa([], "pki-badpolicy-");
    const p = path.join(other.dir, "pki.json");
    const s = JSON.parse(fs.readFileSync(p, "utf8"));
    const file = opensslCsr(other.root, "x", "/CN=x.example.lan");
    for (const [policy, msg] of [
      [{ server: { ip: ["10.0.0.0/33"] } }, /not a CIDR range/],
      [{ server: { dns: "*.example.lan" } }, /must be a list of strings/],
      [{ server: { hosts: ["x"] } }, /unknown field "hosts"/],
    ] as const) {
      fs.writeFileSync(p, JSON.stringify({ ...s, policy }));
      const r = other.run(["sign-csr", file, "--profile", "server", "--json"]);
      expect(r.code).toBe(1);
      expect(json(r).error.code).toBe("CA_INVALID");
      expect(json(r).error.message).toMatch(msg);
    }
  });
});
