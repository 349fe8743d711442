// The pure half of `pki import`: OpenSSL's index forms, and the decisions of planImport.
import { describe, expect, it } from "vitest";
import { assignNames, parseRevocationField, parseSourceIndex, planImport, usableName, type SourceCert } from "../../src/core/import-source.js";
import type { ParsedCertificate } from "../../src/core/parse.js";

const T = (s: string) => new Date(s);

describe("parseRevocationField: every form `openssl ca` writes", () => {
  it("time only: unspecified", () => {
    expect(parseRevocationField("261202004650Z")).toEqual({ revokedAt: T("2026-12-02T00:46:50Z") });
  });
  it("time and reason", () => {
    expect(parseRevocationField("261202004650Z,keyCompromise")).toEqual({ revokedAt: T("2026-12-02T00:46:50Z"), reason: "keyCompromise" });
    expect(parseRevocationField("261202004650Z,CACompromise")).toMatchObject({ reason: "caCompromise" });
    expect(parseRevocationField("261202004650Z,unspecified")).toEqual({ revokedAt: T("2026-12-02T00:46:50Z") });
  });
  it("-crl_hold: holdInstruction with the instruction's name or OID", () => {
    expect(parseRevocationField("261202004711Z,holdInstruction,holdInstructionReject")).toEqual({ revokedAt: T("2026-12-02T00:47:11Z"), reason: "certificateHold", holdInstruction: "1.2.840.10040.2.3" });
    expect(parseRevocationField("261202004711Z,holdInstruction,1.2.840.10040.2.2")).toMatchObject({ holdInstruction: "1.2.840.10040.2.2" });
    expect(parseRevocationField("261202004711Z,holdInstruction,nonsense")).toMatch(/unknown hold instruction/);
  });
  it("-crl_compromise / -crl_CA_compromise: keyTime / CAkeyTime with a GeneralizedTime", () => {
    expect(parseRevocationField("261202004711Z,keyTime,20260101120000Z")).toEqual({ revokedAt: T("2026-12-02T00:47:11Z"), reason: "keyCompromise", invalidityDate: T("2026-01-01T12:00:00Z") });
    expect(parseRevocationField("261202004711Z,CAkeyTime,20250101000000Z")).toMatchObject({ reason: "caCompromise", invalidityDate: T("2025-01-01T00:00:00Z") });
    expect(parseRevocationField("261202004711Z,keyTime,260101120000Z")).toMatch(/bad compromise time/);
  });
  it("garbage", () => {
    expect(parseRevocationField("yesterday")).toMatch(/bad revocation time/);
    expect(parseRevocationField("261202004711Z,bored")).toMatch(/unknown revocation reason/);
    expect(parseRevocationField("261202004711Z,removeFromCRL")).toMatch(/removeFromCRL/);
  });
});

describe("parseSourceIndex", () => {
  it("reads good lines and lists every bad one with its line number", () => {
    const text = [
      "V\t290306004648Z\t\t6A5D\tunknown\t/CN=alice",
      "R\t290306004649Z\t261202004650Z,keyCompromise\tE5B2\tunknown\t/CN=bob",
      "V\t290306004649Z\t\t99\tunknown",
      "X\t290306004649Z\t\t98\tunknown\t/CN=x",
      "V\tsoon\t\t97\tunknown\t/CN=y",
      "V\t290306004649Z\t\tnothex\tunknown\t/CN=z",
      "R\t290306004649Z\t\t96\tunknown\t/CN=w",
      "",
    ].join("\n");
    const { entries, problems } = parseSourceIndex(text);
    expect(entries.map((e) => [e.line, e.serial, e.status])).toEqual([
      [1, "6A5D", "V"],
      [2, "E5B2", "R"],
    ]);
    expect(problems.map((p) => p.where)).toEqual(["index.txt line 3", "index.txt line 4", "index.txt line 5", "index.txt line 6", "index.txt line 7"]);
    expect(problems.every((p) => p.message.startsWith("unparsable line"))).toBe(true);
  });
  it("normalises a serial to OpenSSL's spelling", () => {
    expect(parseSourceIndex("V\t290306004648Z\t\tabc\tunknown\t/CN=a\n").entries[0]!.serial).toBe("0ABC");
  });
});

// a certificate as planImport sees it: serial, DER identity, notAfter, extensions
const cert = (serial: string, notAfter: string, cn = "x", tag = serial): ParsedCertificate =>
  ({ serial, der: new TextEncoder().encode(tag), notAfter: T(notAfter), notBefore: T("2026-01-01T00:00:00Z"), subject: [{ type: "2.5.4.3", value: cn }], extensions: [] }) as unknown as ParsedCertificate;
const file = (p: string, c: ParsedCertificate, extra: Partial<SourceCert> = {}): SourceCert => ({ path: p, cert: c, signedByCa: true, serialFromName: c.serial, ...extra });

const INDEX = [
  "V\t290306004648Z\t\tA1\tunknown\t/CN=alice",
  "R\t290306004648Z\t261202004650Z,keyCompromise\tB2\tunknown\t/CN=bob",
  "V\t290306004648Z\t\tC3\tunknown\t/CN=carol",
].join("\n");
const EXP = "2029-03-06T00:46:48Z";

describe("planImport", () => {
  const parsed = () => parseSourceIndex(INDEX);

  it("a clean source: every line with its file, no problems", () => {
    const { entries, problems } = parsed();
    const plan = planImport({ entries, indexProblems: problems, certs: [file("c/A1.pem", cert("A1", EXP)), file("c/B2.pem", cert("B2", EXP)), file("c/C3.pem", cert("C3", EXP))], skipBroken: false });
    expect(plan.problems).toEqual([]);
    expect(plan.certificates.map((c) => c.entry.serial)).toEqual(["A1", "B2", "C3"]);
    expect(plan.crlNumber).toBe(1n);
  });

  it("a missing file, a wrong signature, an expiry mismatch: listed; --skip-broken leaves valid ones out and keeps revoked ones", () => {
    const { entries, problems } = parsed();
    const certs = [file("c/A1.pem", cert("A1", "2030-01-01T00:00:00Z")), file("c/B2.pem", cert("B2", EXP), { signedByCa: false })];
    const strict = planImport({ entries, indexProblems: problems, certs, skipBroken: false });
    expect(strict.problems.map((p) => p.serial).sort()).toEqual(["A1", "B2", "C3"]);
    const skip = planImport({ entries, indexProblems: problems, certs, skipBroken: true });
    expect(skip.certificates.map((c) => [c.entry.serial, c.entry.status, c.cert === undefined])).toEqual([["B2", "R", true]]);
    expect(skip.skipped.join("\n")).toMatch(/A1.*left out[\s\S]*B2.*kept as revoked, without its certificate file[\s\S]*C3.*left out/);
  });

  it("a duplicate serial is a problem; skipped, the revoked line wins", () => {
    const { entries, problems } = parseSourceIndex(INDEX + "\nV\t290306004648Z\t\tB2\tunknown\t/CN=bob\n");
    const certs = ["A1", "B2", "C3"].map((s) => file(`c/${s}.pem`, cert(s, EXP)));
    expect(planImport({ entries, indexProblems: problems, certs, skipBroken: false }).problems).toEqual([{ where: "index.txt line 4", message: "duplicate serial B2 (also on line 2)", serial: "B2" }]);
    const skip = planImport({ entries, indexProblems: problems, certs, skipBroken: true });
    expect(skip.certificates.find((c) => c.entry.serial === "B2")).toMatchObject({ entry: { status: "R", reason: "keyCompromise" } });
  });

  it("a file whose name and content disagree, two different certificates with one serial", () => {
    const { entries, problems } = parsed();
    const certs = [file("c/A1.pem", cert("A1", EXP)), file("c/B2.pem", cert("B2", EXP)), file("c/C3.pem", cert("C3", EXP)), file("x/C3.pem", cert("C3", EXP, "x", "other")), { ...file("c/D4.pem", cert("A1", EXP)), serialFromName: "D4" }];
    const plan = planImport({ entries, indexProblems: problems, certs, skipBroken: false });
    expect(plan.problems.map((p) => p.message)).toEqual(["the file name says serial D4, the certificate in it has A1", "serial C3: different certificates carry this serial (c/C3.pem, x/C3.pem)"]);
  });

  it("CRL numbers continue above the source's crlnumber and the source CRL's number", () => {
    const { entries, problems } = parsed();
    const certs = ["A1", "B2", "C3"].map((s) => file(`c/${s}.pem`, cert(s, EXP)));
    const crl = { path: "crl.pem", crlNumber: 0x1000n, signedByCa: true, entries: [{ serial: "B2", revokedAt: T("2026-12-02T00:46:50Z"), reason: "keyCompromise" as const }] };
    expect(planImport({ entries, indexProblems: problems, certs, crl, crlNumberFile: 0x1001n, skipBroken: false }).crlNumber).toBe(0x1001n);
    expect(planImport({ entries, indexProblems: problems, certs, crl, crlNumberFile: 0x0fffn, skipBroken: false }).crlNumber).toBe(0x1001n);
    expect(planImport({ entries, indexProblems: problems, certs, crlNumberFile: 0x20n, skipBroken: false }).crlNumber).toBe(0x20n);
  });

  it("a CRL that revokes what the index calls valid: a problem; skipped, the revocation wins", () => {
    const { entries, problems } = parsed();
    const certs = ["A1", "B2", "C3"].map((s) => file(`c/${s}.pem`, cert(s, EXP)));
    const crl = { path: "crl.pem", signedByCa: true, entries: [{ serial: "B2", revokedAt: T("2026-12-02T00:46:50Z") }, { serial: "C3", revokedAt: T("2026-11-01T00:00:00Z"), reason: "superseded" as const }] };
    expect(planImport({ entries, indexProblems: problems, certs, crl, skipBroken: false }).problems.map((p) => p.message)).toEqual(['serial C3 is revoked in the CRL but "V" in index.txt']);
    const skip = planImport({ entries, indexProblems: problems, certs, crl, skipBroken: true });
    expect(skip.certificates.find((c) => c.entry.serial === "C3")!.entry).toMatchObject({ status: "R", reason: "superseded", revokedAt: T("2026-11-01T00:00:00Z") });
  });

  it("names: issued/<name>.crt by serial, the CN for easy-rsa's revoked ones, unusable names noted", () => {
    const { entries, problems } = parsed();
    const certs = [file("issued/alice.crt", cert("A1", EXP, "alice"), { name: "alice", serialFromName: undefined }), file("c/A1.pem", cert("A1", EXP, "alice")), file("r/B2.crt", cert("B2", EXP, "bob")), file("issued/ca.crt", cert("C3", EXP, "ca"), { name: "ca", serialFromName: undefined })];
    const plan = planImport({ entries, indexProblems: problems, certs, skipBroken: false });
    assignNames(plan, certs, true);
    expect(plan.certificates.map((c) => c.name)).toEqual(["alice", "bob", undefined]);
    expect(plan.notes.join("\n")).toContain('the name "ca" is not usable');
    const plain = planImport({ entries, indexProblems: problems, certs, skipBroken: false });
    assignNames(plain, certs, false);
    expect(plain.certificates.map((c) => c.name)).toEqual(["alice", undefined, undefined]);
  });

  it("usableName refuses path tricks and the CA's own file names", () => {
    for (const n of ["..", "a/b", "ca", "CA", "crl", "index", "pki", ".hidden", ""]) expect(usableName(n), n).toBe(false);
    for (const n of ["alice", "vpn.example.lan", "a_b-c@d"]) expect(usableName(n), n).toBe(true);
  });
});
