import { describe, expect, it } from "vitest";
import { checkKey, checkNamePolicy, dnsMatches, ipInCidr, ruleFor, templateFromCsr, validateNamePolicy, type NameRule } from "../../src/core/csr-policy.js";
import { OID, basicConstraints, keyUsage, extKeyUsage, subjectAltName } from "../../src/core/certificate.js";
import { encodeName, parseDn, type San } from "../../src/core/names.js";
import { PkiError } from "../../src/core/errors.js";
import * as der from "../../src/core/der.js";
import { builtinProfile } from "./build.js";

function err(f: () => unknown): PkiError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(PkiError);
    return e as PkiError;
  }
  throw new Error("expected a PkiError");
}

describe("dnsMatches", () => {
  it.each([
    ["a.agents.example.lan", "*.agents.example.lan", true],
    ["A.Agents.Example.LAN", "*.agents.example.lan", true],
    ["a.agents.example.lan.", "*.agents.example.lan", true],
    ["web1.example.lan", "web1.example.lan", true],
    ["x.a.agents.example.lan", "*.agents.example.lan", false], // "*" is exactly one label
    ["agents.example.lan", "*.agents.example.lan", false],
    ["a.agents.example.lan.evil.lan", "*.agents.example.lan", false],
    ["aagents.example.lan", "*.agents.example.lan", false],
    // a pattern's "*" never grants a wildcard certificate; "=NAME" is an exact match that can
    ["*.agents.example.lan", "*.agents.example.lan", false],
    ["*.agents.example.lan", "=*.agents.example.lan", true],
    ["a.agents.example.lan", "=*.agents.example.lan", false],
    ["*.example.lan", "*.agents.example.lan", false],
    ["*.agents.example.lan", "a.agents.example.lan", false],
    ["a.b.example.lan", "a.*.example.lan", true],
    ["web2.example.lan", "web1.example.lan", false],
  ])("%s vs %s -> %s", (name, pattern, want) => {
    expect(dnsMatches(name, pattern)).toBe(want);
  });
});

describe("ipInCidr", () => {
  it.each([
    ["10.20.3.4", "10.20.0.0/16", true],
    ["10.21.0.1", "10.20.0.0/16", false],
    ["10.21.0.1", "10.20.0.0/15", true],
    ["10.22.0.1", "10.20.0.0/15", false],
    ["192.168.1.7", "192.168.1.7/32", true],
    ["192.168.1.8", "192.168.1.7/32", false],
    ["192.168.1.7", "192.168.1.7", true],
    ["8.8.8.8", "0.0.0.0/0", true],
    ["fd00::5", "fd00::/8", true],
    ["fe80::1", "fd00::/8", false],
    ["2001:db8:1::1", "2001:db8::/32", true],
    ["10.20.0.1", "fd00::/8", false],
    ["::ffff:10.20.0.1", "10.20.0.0/16", false], // a mapped v6 address is not the v4 range
    ["fd00::5", "10.0.0.0/8", false],
    ["not-an-ip", "10.0.0.0/8", false],
    ["10.0.0.1", "10.0.0.0/33", false],
    ["10.0.0.1", "10.0.0.0/x", false],
  ])("%s in %s -> %s", (ip, cidr, want) => {
    expect(ipInCidr(ip, cidr)).toBe(want);
  });
});

describe("checkNamePolicy", () => {
  const rule: NameRule = { dns: ["*.agents.example.lan", "pki.example.lan"], ip: ["10.20.0.0/16", "fd00::/8"], email: ["example.lan", ".corp.example.lan"] };
  const dns = (value: string): San => ({ type: "dns", value });
  const ok = (cn: string | undefined, sans: San[]) => expect(() => checkNamePolicy(rule, "ssl", cn, sans)).not.toThrow();
  const denied = (cn: string | undefined, sans: San[], what: string) => {
    const e = err(() => checkNamePolicy(rule, "ssl", cn, sans));
    expect(e.code).toBe("POLICY_DENIED");
    expect(e.exitCode).toBe(1);
    expect(e.message).toContain(what);
    expect(e.message).toContain('"ssl"');
  };

  it("allows names inside the rule", () => {
    ok("a1.agents.example.lan", [dns("a1.agents.example.lan"), dns("pki.example.lan"), { type: "ip", value: "10.20.9.9" }, { type: "ip", value: "fd00::7" }]);
    ok("alice@example.lan", [{ type: "email", value: "alice@example.lan" }, { type: "email", value: "bob@eu.corp.example.lan" }]);
    ok("Alice Admin", []); // a CN that names no host or mailbox, and no "cn" list: allowed
    ok(undefined, [dns("b.agents.example.lan")]);
  });

  it("denies names outside it, naming the offender", () => {
    denied("a1.agents.example.lan", [dns("evil.example.com")], "dns:evil.example.com");
    denied("x", [{ type: "ip", value: "10.21.0.1" }], "ip:10.21.0.1");
    denied("x", [{ type: "email", value: "mallory@evil.lan" }], "email:mallory@evil.lan");
    denied("x", [{ type: "email", value: "a@corp.example.lan" }], "email:a@corp.example.lan"); // ".corp..." means subdomains only
    denied("x", [{ type: "email", value: "a@evilexample.lan" }], "email:a@evilexample.lan");
    denied("x", [{ type: "uri", value: "spiffe://example.lan/a" }], "uri:spiffe://example.lan/a");
    denied("www.bank.example.com", [], "CN=www.bank.example.com");
    denied("*.example.lan", [], "CN=*.example.lan");
    denied("root@evil.lan", [], "CN=root@evil.lan");
  });

  it("a cn list restricts the other CNs", () => {
    const r: NameRule = { cn: ["Build Agent"] };
    expect(() => checkNamePolicy(r, "client", "Build Agent", [])).not.toThrow();
    expect(err(() => checkNamePolicy(r, "client", "Someone Else", [])).code).toBe("POLICY_DENIED");
    expect(() => checkNamePolicy({ cn: ["*"] }, "client", "Anyone", [])).not.toThrow();
  });

  it("no rule for the profile (and no '*'): no restriction; '*' applies to every profile without its own", () => {
    const policy = validateNamePolicy({ server: { dns: ["*.example.lan"] }, "*": { dns: ["*.agents.example.lan"] } });
    expect(ruleFor(policy, "server")).toEqual({ dns: ["*.example.lan"] });
    expect(ruleFor(policy, "client")).toEqual({ dns: ["*.agents.example.lan"] });
    expect(ruleFor(validateNamePolicy({ server: {} }), "client")).toBeUndefined();
    expect(() => checkNamePolicy(undefined, "client", "anything.example.com", [dns("anything.example.com")])).not.toThrow();
    // an empty rule allows no names at all
    expect(err(() => checkNamePolicy({}, "server", undefined, [dns("a.example.lan")])).code).toBe("POLICY_DENIED");
  });

  it("validateNamePolicy refuses malformed policies with CA_INVALID", () => {
    for (const p of [[], "x", { ssl: [] }, { ssl: { dns: "a" } }, { ssl: { hosts: ["a"] } }, { ssl: { ip: ["10.0.0.0/40"] } }, { ssl: { ip: ["ten"] } }]) {
      expect(err(() => validateNamePolicy(p)).code).toBe("CA_INVALID");
    }
    expect(validateNamePolicy(undefined)).toEqual({});
  });
});

describe("checkKey", () => {
  it("accepts RSA >= 2048, P-256/384/521, Ed25519; refuses the rest with WEAK_KEY", () => {
    expect(checkKey({ type: "rsa", bits: 2048 })).toBe("rsa");
    expect(checkKey({ type: "ec", curve: "P-384" })).toBe("ec-p384");
    expect(checkKey({ type: "ed25519" })).toBe("ed25519");
    for (const k of [{ type: "rsa", bits: 1024 }, { type: "rsa", bits: 2047 }, { type: "rsa" }, { type: "ec", curve: "secp256k1" }, { type: "dsa" }, { type: "ed448" }]) {
      expect(err(() => checkKey(k)).code).toBe("WEAK_KEY");
    }
  });
});

describe("templateFromCsr: only subject and SANs come from the request", () => {
  const subject = parseDn("CN=agent1.agents.example.lan,O=Acme");
  const req = (extensions: Array<{ oid: string; critical: boolean; value: Uint8Array }>) => ({ subject, subjectRaw: encodeName(subject), extensions });
  const san = subjectAltName([{ type: "dns", value: "agent1.agents.example.lan" }]);

  it("refuses a request for CA:TRUE outright", () => {
    for (const bc of [basicConstraints(true), basicConstraints(true, 0)]) {
      const e = err(() => templateFromCsr(req([bc, keyUsage(["keyCertSign", "cRLSign"])]), builtinProfile("ssl"), {}, {}));
      expect(e.code).toBe("POLICY_DENIED");
      expect(e.message).toContain("CA:TRUE");
    }
  });

  it("ignores and reports every other requested extension (CA:FALSE, key usages, EKUs)", () => {
    const t = templateFromCsr(req([basicConstraints(false), keyUsage(["digitalSignature", "keyCertSign"]), extKeyUsage(["codeSigning"]), san]), builtinProfile("ssl"), {}, {});
    expect(t.ignoredExtensions).toEqual(["basicConstraints", "keyUsage", "extKeyUsage"]);
    expect(t.sans).toEqual([{ type: "dns", value: "agent1.agents.example.lan" }]);
    expect(t.subjectRaw).toBeDefined();
  });

  it("--cn and --san override the request", () => {
    const t = templateFromCsr(req([san]), builtinProfile("ssl"), { cn: "other.example.lan", sans: [{ type: "dns", value: "other.example.lan" }] }, {});
    expect(t.subject.map((r) => r.value)).toEqual(["Acme", "other.example.lan"]);
    expect(t.subjectRaw).toBeUndefined();
    expect(t.sans).toEqual([{ type: "dns", value: "other.example.lan" }]);
  });

  it("applies the name policy of the profile", () => {
    const policy = validateNamePolicy({ ssl: { dns: ["*.servers.example.lan"] } });
    expect(err(() => templateFromCsr(req([san]), builtinProfile("ssl"), {}, policy)).code).toBe("POLICY_DENIED");
    expect(() => templateFromCsr(req([san]), builtinProfile("client"), {}, policy)).not.toThrow();
  });

  it("refuses SAN types pki does not certify, and a malformed SAN", () => {
    const other = { oid: OID.subjectAltName, critical: false, value: der.seq(der.ctx(0, der.oid("1.2.3.4"), der.ctx(0, der.utf8("x")))) };
    expect(err(() => templateFromCsr(req([other]), builtinProfile("ssl"), {}, {})).code).toBe("POLICY_DENIED");
    const broken = { oid: OID.subjectAltName, critical: false, value: Uint8Array.of(0x30, 0x05, 0x82, 0x01) };
    expect(err(() => templateFromCsr(req([broken]), builtinProfile("ssl"), {}, {})).code).toBe("BAD_INPUT");
  });

  it("a bad subject in a request is bad input (exit 1), not a usage error", () => {
    const bad = [{ type: "2.5.4.6", value: "fr" }, { type: "2.5.4.3", value: "x.example.lan" }];
    const e = err(() => templateFromCsr({ subject: bad, subjectRaw: encodeName(bad), extensions: [] }, builtinProfile("client"), {}, {}));
    expect(e.code).toBe("BAD_INPUT");
    expect(e.exitCode).toBe(1);
  });

  it("server: the CN becomes the DNS name when none is requested; code-signing refuses IP SANs", () => {
    expect(templateFromCsr(req([]), builtinProfile("server"), {}, {}).sans).toEqual([{ type: "dns", value: "agent1.agents.example.lan" }]);
    const ipSan = subjectAltName([{ type: "ip", value: "10.0.0.1" }]);
    expect(err(() => templateFromCsr(req([ipSan]), builtinProfile("code-signing"), {}, {})).code).toBe("POLICY_DENIED");
    const noDnsCn = parseDn("CN=Alice Admin");
    expect(err(() => templateFromCsr({ subject: noDnsCn, subjectRaw: encodeName(noDnsCn), extensions: [] }, builtinProfile("server"), {}, {})).code).toBe("USAGE");
  });
});

describe("a CN that is an IP address is checked against the ip ranges", () => {
  it("allows an IP CN inside a range and refuses one outside", () => {
    expect(() => checkNamePolicy({ ip: ["10.0.0.0/8"] }, "ssl", "10.1.2.3", [])).not.toThrow();
    expect(() => checkNamePolicy({ ip: ["10.0.0.0/8"] }, "ssl", "192.168.1.1", [])).toThrow(/POLICY|outside/);
  });
});
