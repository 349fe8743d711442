/**
 * core/verify-checks.ts alone: what `pki verify` decides from the facts
 * ca/verify.ts gathers (fixed dates, no store).
 */
import { describe, expect, it } from "vitest";
import { encodeRevoked } from "../../src/core/crl.js";
import type { IndexEntry } from "../../src/core/index-format.js";
import { chainCheck, purposeCheck, revocationCheck, unknownRevocation, validityCheck, type ChainFacts, type CrlFacts, type ParentFacts } from "../../src/core/verify-checks.js";

const now = new Date("2026-06-01T12:00:00Z");
const day = (d: number) => new Date(now.getTime() + d * 86_400_000);
const ca: ChainFacts = { signed: true, caSubject: "CN=Test CA", caNotBefore: day(-100), caNotAfter: day(1000), issuer: "CN=Test CA", parent: null };
const entry = (status: "V" | "R", reason?: IndexEntry["reason"]): IndexEntry => ({ status, expires: day(30), serial: "0A", file: "unknown", subject: "/CN=x", ...(status === "R" ? { revokedAt: day(-1), reason } : {}) });
const crlOf = (serials: string[], nextUpdate = day(5)): CrlFacts => ({ state: "read", signedByCa: true, nextUpdate, revokedDer: encodeRevoked(serials.map((serial) => ({ serial, time: "260501000000Z" }))) });
const parent = (p: Partial<ParentFacts>): ParentFacts => ({ chainOk: true, message: "root CN=Root, link ok", revokedByParent: false, crl: "not revoked", ...p });

describe("chain", () => {
  it("passes for a certificate signed by a valid CA", () => expect(chainCheck(ca, now)).toEqual({ name: "chain", ok: true, message: "signed by CN=Test CA" }));
  it("fails, in this order: not signed, not the recorded copy, CA out of its period, parent link", () => {
    expect(chainCheck({ ...ca, signed: false, issuer: "CN=Other" }, now).message).toBe("not issued by this CA (CN=Test CA): issued by CN=Other, or its signature does not verify");
    expect(chainCheck({ ...ca, notRecorded: "x.pem differs" }, now)).toEqual({ name: "chain", ok: false, message: "x.pem differs" });
    expect(chainCheck({ ...ca, caNotAfter: day(-1) }, now)).toMatchObject({ ok: false, message: expect.stringMatching(/^the CA certificate is outside its validity period/) });
    expect(chainCheck({ ...ca, parent: parent({ chainOk: false, message: "parent.crt expired" }) }, now)).toEqual({ name: "chain", ok: false, message: "parent.crt expired" });
  });
  it("names the parent link of an issuing CA when it holds", () => expect(chainCheck({ ...ca, parent: parent({}) }, now).message).toBe("signed by CN=Test CA; root CN=Root, link ok"));
});

describe("validity", () => {
  it("inside, after and before the period", () => {
    expect(validityCheck({ notBefore: day(-1), notAfter: day(1) }, now)).toEqual({ name: "validity", ok: true, message: `valid until ${day(1).toISOString()}` });
    expect(validityCheck({ notBefore: day(-10), notAfter: day(-1) }, now)).toEqual({ name: "validity", ok: false, message: `expired on ${day(-1).toISOString()}` });
    expect(validityCheck({ notBefore: day(1), notAfter: day(10) }, now)).toEqual({ name: "validity", ok: false, message: `not valid before ${day(1).toISOString()}` });
  });
});

describe("revocation", () => {
  const facts = { serial: "0A", caSubject: "CN=Test CA", parent: null };
  it("not revoked: index and a current CRL agree", () => {
    const r = revocationCheck({ ...facts, entry: entry("V"), crl: crlOf(["0B"]) }, now);
    expect(r).toEqual({ check: { name: "revocation", ok: true, message: "not revoked (index and crl.pem)" }, revoked: false, revocation: { index: "not revoked", crl: "not revoked", crlNextUpdate: day(5).toISOString() } });
  });
  it("revoked in the index and listed in crl.pem", () => {
    const r = revocationCheck({ ...facts, entry: entry("R", "keyCompromise"), crl: crlOf(["0A"]) }, now);
    expect(r.revoked).toBe(true);
    expect(r.check).toEqual({ name: "revocation", ok: false, message: `revoked on ${day(-1).toISOString()} (keyCompromise), listed in crl.pem` });
  });
  it("revoked in the index but not yet in crl.pem: says to re-sign it", () => {
    expect(revocationCheck({ ...facts, entry: entry("R"), crl: crlOf([]) }, now).check.message).toMatch(/\(unspecified\), but crl\.pem does not list it yet: run `pki crl`$/);
  });
  it("a missing, unreadable, foreign or expired CRL fails the check: not listed means nothing then", () => {
    const msg = (crl: CrlFacts) => revocationCheck({ ...facts, entry: entry("V"), crl }, now);
    expect(msg({ state: "missing" }).check).toEqual({ name: "revocation", ok: false, message: "crl.pem is missing: run `pki crl`" });
    expect(msg({ state: "error", message: "bad DER" }).check.message).toBe("crl.pem cannot be read (bad DER): run `pki crl`");
    expect(msg({ state: "read", signedByCa: false, revokedDer: new Uint8Array(0) }).check.message).toBe("crl.pem is not signed by this CA: run `pki crl`");
    const stale = msg(crlOf([], day(-1)));
    expect(stale.check.message).toBe(`crl.pem expired on ${day(-1).toISOString()} (nginx now refuses every client): run \`pki crl\``);
    expect(stale.revocation).toEqual({ index: "not revoked", crl: "unavailable" });
    expect(stale.revoked).toBe(false);
  });
  it("an issuing CA revoked by its parent revokes everything below it", () => {
    const r = revocationCheck({ ...facts, entry: entry("V"), crl: crlOf([]), parent: parent({ revokedByParent: true, crl: "revoked" }) }, now);
    expect(r.revoked).toBe(true);
    expect(r.revocation.parentCrl).toBe("revoked");
    expect(r.check.message).toBe("the issuing CA CN=Test CA is revoked by its parent (parent-crl.pem): every certificate it issued is refused");
  });
  it("the parent's CRL problem counts when crl.pem itself is fine", () => {
    const r = revocationCheck({ ...facts, entry: entry("V"), crl: crlOf([]), parent: parent({ crl: "unavailable", crlProblem: "parent-crl.pem expired" }) }, now);
    expect(r.check).toEqual({ name: "revocation", ok: false, message: "parent-crl.pem expired" });
  });
  it("a certificate that is not this CA's: unknown", () => expect(unknownRevocation().check).toEqual({ name: "revocation", ok: false, message: "unknown: not a certificate of this CA" }));
});

describe("purpose", () => {
  it("an absent EKU allows any purpose; a listed one must be there", () => {
    expect(purposeCheck("client", null, null, null).check).toEqual({ name: "purpose", ok: true, message: "good for client (clientAuth)" });
    expect(purposeCheck("server", ["clientAuth"], null, null).check.message).toBe("not for server: its extendedKeyUsage is clientAuth (no serverAuth)");
  });
  it("the CA's (or the root's) EKU limits the chain, as OpenSSL and nginx judge it", () => {
    const r = purposeCheck("client", ["clientAuth"], ["codeSigning"], null);
    expect(r.purpose).toEqual({ name: "client", ok: false, extendedKeyUsage: ["clientAuth"] });
    expect(r.check.message).toBe("the CA's extendedKeyUsage (codeSigning) does not allow clientAuth: OpenSSL and nginx reject the chain for client");
    expect(purposeCheck("client", null, null, ["serverAuth"]).check.ok).toBe(false);
  });
});
