/**
 * Issue 10.11 (configuration) and 10.4 (name policy), the pure parts: a
 * profile is validated against own-property tables and real OIDs; the name
 * policy checks every CN, every emailAddress and refuses wildcards that are
 * not a whole leftmost label.
 */
import { describe, expect, it } from "vitest";
import * as der from "../../src/core/der.js";
import { PkiError } from "../../src/core/errors.js";
import { validateProfile } from "../../src/core/profiles.js";
import { checkNamePolicy, dnsMatches } from "../../src/core/csr-policy.js";
import { parseDn } from "../../src/core/names.js";

const code = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (e) {
    return e instanceof PkiError ? e.code : `not a PkiError: ${String(e)}`;
  }
  return undefined;
};

const profile = (d: Record<string, unknown>) => () => validateProfile("evil", { keyUsage: ["digitalSignature"], ...d }, "test/evil.json");

describe("profile validation (10.11)", () => {
  for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf"]) {
    it(`keyUsage ${name} is PROFILE_INVALID`, () => {
      expect(code(profile({ keyUsage: [name] }))).toBe("PROFILE_INVALID");
      expect(code(profile({ rsaKeyUsage: [name] }))).toBe("PROFILE_INVALID");
    });
    it(`extendedKeyUsage ${name} is PROFILE_INVALID`, () => {
      expect(code(profile({ extendedKeyUsage: [name] }))).toBe("PROFILE_INVALID");
    });
  }
  for (const bad of ["7.2", "3.1", "1.40", "0.99.1", "1", "1.2.", ".1.2", "1..2", "01.2", "1.02.3", "1.2.3a"]) {
    it(`extendedKeyUsage OID ${bad} is PROFILE_INVALID`, () => {
      expect(code(profile({ extendedKeyUsage: [bad] }))).toBe("PROFILE_INVALID");
    });
  }
  for (const good of ["1.3.6.1.5.5.7.3.2", "2.999.1", "2.5.29.37.0", "1.39.1", "0.0"]) {
    it(`extendedKeyUsage OID ${good} is accepted`, () => {
      expect(code(profile({ extendedKeyUsage: [good] }))).toBeUndefined();
    });
  }
  it("der.oid refuses what it cannot encode instead of encoding another OID", () => {
    expect(der.isValidOid("7.2")).toBe(false);
    expect(() => der.oid("7.2")).toThrow(RangeError);
    expect(() => der.oid("1.40")).toThrow(RangeError);
    expect(der.toHex(der.oid("2.999.3"))).toBe("0603883703");
  });
  it("a dotted OID in a subject is checked the same way", () => {
    expect(code(() => parseDn("7.2=x,CN=a"))).toBe("USAGE");
    expect(parseDn("2.5.4.3=a")[0]!.type).toBe("2.5.4.3");
  });
});

describe("name policy checks every name (10.4)", () => {
  const rule = { dns: ["*.agents.example.lan"], email: ["example.lan"] };
  const denied = (cn: string | string[], emails: string[] = []) => code(() => checkNamePolicy(rule, "client", cn, [], emails));
  it("each CN is checked, not only the last", () => {
    expect(denied(["agent1.agents.example.lan"])).toBeUndefined();
    expect(denied(["admin.corp.example", "agent1.agents.example.lan"])).toBe("POLICY_DENIED");
    expect(denied(["agent1.agents.example.lan", "admin.corp.example"])).toBe("POLICY_DENIED");
  });
  it("a wildcard is only a whole leftmost label", () => {
    for (const cn of ["a*.agents.example.lan", "**.agents.example.lan", "*a.agents.example.lan", "*.agents.example.lan", "a.*.example.lan"]) {
      expect(denied(cn), cn).toBe("POLICY_DENIED");
    }
    expect(dnsMatches("a*.agents.example.lan", "*.agents.example.lan")).toBe(false);
    expect(dnsMatches("**.agents.example.lan", "*.agents.example.lan")).toBe(false);
    expect(dnsMatches("x-1.agents.example.lan", "*.agents.example.lan")).toBe(true);
    expect(dnsMatches("*.apps.example.lan", "=*.apps.example.lan")).toBe(true);
  });
  it("a CN with a dot that is no DNS name is not waved through as a plain CN", () => {
    expect(denied("admin.corp.example:443")).toBe("POLICY_DENIED");
    expect(denied("agent 1.agents.example.lan")).toBe("POLICY_DENIED");
    expect(denied("Agent One")).toBeUndefined(); // no "cn" list: plain CNs as before
  });
  it("emailAddress attributes of the subject are checked against the e-mail rule", () => {
    expect(denied("alice", ["alice@example.lan"])).toBeUndefined();
    expect(denied("alice", ["alice@evil.lan"])).toBe("POLICY_DENIED");
  });
});
