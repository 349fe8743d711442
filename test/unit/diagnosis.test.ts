/**
 * pki doctor's diagnosis (core/diagnosis.ts) with fixed snapshots: no CA
 * directory, no clock, no crypto. Each test changes one thing of a healthy
 * snapshot and checks the verdict, the message and what --repair may fix;
 * then the repairs' pure edits.
 */
import { describe, expect, it } from "vitest";
import { encodeRevoked, revokedFromIndexText, type CrlInfo } from "../../src/core/crl.js";
import { cleanMeta, cutIndexTail, diagnose, readIndexForDoctor, recordOrphans, restoreRevocations, type Check, type DoctorSnapshot } from "../../src/core/diagnosis.js";
import { parseIndex } from "../../src/core/index-format.js";
import type { ParsedCertificate } from "../../src/core/parse.js";

const NOW = new Date("2030-06-01T00:00:00Z");
const DAY = 86_400_000;
const CA_DER = Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x07);
const CA_PEM = `-----BEGIN CERTIFICATE-----\n${Buffer.from(CA_DER).toString("base64")}\n-----END CERTIFICATE-----\n`;
const V = "V\t310101000000Z\t\t0B\tunknown\t/CN=b\n";
const R = "R\t310101000000Z\t300101000000Z,keyCompromise\t0A\tunknown\t/CN=a\n";
const INDEX = R + V;

function crlInfo(index: string, o: Partial<CrlInfo> = {}): CrlInfo {
  const revoked = revokedFromIndexText(index);
  return {
    tbs: new Uint8Array(0),
    signatureAlgorithm: "1.2.840.10045.4.3.2",
    signature: new Uint8Array(0),
    issuerRaw: new Uint8Array(0),
    thisUpdate: new Date(NOW.getTime() - DAY),
    nextUpdate: new Date(NOW.getTime() + 6 * DAY),
    crlNumber: 4n,
    revoked: revoked.length,
    revokedDer: encodeRevoked(revoked),
    ...o,
  };
}

/** A healthy CA: a fresh CRL that matches the index, every file in place, nothing left over. */
function healthy(o: Partial<DoctorSnapshot> = {}): DoctorSnapshot {
  return {
    now: NOW,
    caNotAfter: new Date(NOW.getTime() + 3650 * DAY),
    caDer: CA_DER,
    where: { crl: "/ca/crl.pem", bundle: "/ca/ca-clients.crt", allowMap: "/ca/nginx-allow.map", lock: "/ca/.lock" },
    index: readIndexForDoctor(INDEX),
    crl: { cur: { signedByCa: true, info: crlInfo(INDEX) }, drops: [], nextNumber: 5n },
    parent: { checks: [], chainStale: false },
    modes: [{ path: "/ca/private/", mode: 0o700 }, { path: "/ca/private/ca.key", mode: 0o600 }],
    metaText: "0A\tserver\tweb\n0B\tclient\t-\n",
    certFiles: ["0A", "0B"],
    stray: [],
    bundle: { text: CA_PEM, mtimeMs: NOW.getTime(), setting: false, expected: null },
    allow: { setting: false, text: null, expected: null },
    tmpFiles: [],
    lock: { kind: "none" },
    ...o,
  };
}

const check = (checks: Check[], name: string) => checks.find((c) => c.name === name);

describe("diagnose", () => {
  it("a healthy CA: every check ok, in doctor's order, nothing to repair", () => {
    const d = diagnose(healthy());
    expect(d.checks.map((c) => c.name)).toEqual(["ca-certificate", "crl", "key-modes", "index", "bundle", "bundle-size", "temp-files", "lock"]);
    expect(d.checks.every((c) => c.status === "ok")).toBe(true);
    expect(check(d.checks, "crl")!.message).toBe("number 4, 1 revoked, next update 2030-06-07T00:00:00.000Z (in 6 days)");
    expect(d).toMatchObject({ crlStale: false, bundleStale: false, allowStale: false, chainStale: false, drops: [], orphans: [], badMetaLines: 0 });
    expect(d.crlNumberFix).toBeUndefined();
  });

  it("a CA certificate within 90 days of its end fails", () => {
    const d = diagnose(healthy({ caNotAfter: new Date(NOW.getTime() + 30 * DAY) }));
    expect(check(d.checks, "ca-certificate")).toEqual({ name: "ca-certificate", status: "fail", message: "the CA certificate expires on 2030-07-01T00:00:00.000Z (in 30 days): plan its replacement now" });
  });

  it("a missing CRL, one not signed by the CA and an unreadable one are stale", () => {
    expect(check(diagnose(healthy({ crl: { cur: null, drops: [], nextNumber: null } })).checks, "crl")!.message).toBe("/ca/crl.pem is missing: nginx cannot start with ssl_crl; run `pki crl`");
    const unsigned = diagnose(healthy({ crl: { cur: { signedByCa: false, info: crlInfo(INDEX) }, drops: [], nextNumber: null } }));
    expect(unsigned.crlStale).toBe(true);
    expect(check(unsigned.checks, "crl")!.message).toBe("/ca/crl.pem is not signed by this CA's key: run `pki crl`");
    const bad = diagnose(healthy({ crl: { error: "crl.pem is not a readable CRL: run `pki crl`" } }));
    expect(bad.crlStale).toBe(true);
    expect(check(bad.checks, "crl")).toEqual({ name: "crl", status: "fail", message: "crl.pem is not a readable CRL: run `pki crl`" });
  });

  it("a CRL within a day of its nextUpdate, past it, or from the future is stale", () => {
    const soon = diagnose(healthy({ crl: { cur: { signedByCa: true, info: crlInfo(INDEX, { nextUpdate: new Date(NOW.getTime() + 3_600_000) }) }, drops: [], nextNumber: 5n } }));
    expect(soon.crlStale).toBe(true);
    expect(check(soon.checks, "crl")!.message).toMatch(/within a day/);
    const past = diagnose(healthy({ crl: { cur: { signedByCa: true, info: crlInfo(INDEX, { nextUpdate: undefined }) }, drops: [], nextNumber: 5n } }));
    expect(check(past.checks, "crl")!.message).toBe("the CRL expired (no nextUpdate): nginx refuses every client certificate until `pki crl` and a reload");
    const future = diagnose(healthy({ crl: { cur: { signedByCa: true, info: crlInfo(INDEX, { thisUpdate: new Date(NOW.getTime() + 10 * 60_000) }) }, drops: [], nextNumber: 5n } }));
    expect(check(future.checks, "crl")!.message).toMatch(/is in the future \(a clock jump\?\)/);
  });

  it("a CRL out of step with the index (core/crl-match.ts) is stale", () => {
    const d = diagnose(healthy({ crl: { cur: { signedByCa: true, info: crlInfo(V) }, drops: [], nextNumber: 5n } }));
    expect(d.crlStale).toBe(true);
    expect(check(d.checks, "crl")!.message).toBe("the CRL is out of step with index.txt (1 revocation(s) differ): run `pki crl` and reload nginx");
  });

  it("live revocations the index lost are reported, not re-signed away", () => {
    const d = diagnose(healthy({ crl: { cur: { signedByCa: true, info: crlInfo(INDEX) }, drops: [{ serial: "0C" }], nextNumber: 5n } }));
    expect(d.drops).toEqual([{ serial: "0C" }]);
    expect(d.crlStale).toBe(false);
    expect(check(d.checks, "crl")!.message).toMatch(/^crl\.pem lists 1 revoked certificate\(s\) that have not expired but index\.txt does not mark revoked \(0C\)/);
  });

  it("a crlnumber not above crl.pem's number is a crl-number failure with its fix", () => {
    const d = diagnose(healthy({ crl: { cur: { signedByCa: true, info: crlInfo(INDEX) }, drops: [], nextNumber: 4n } }));
    expect(d.crlNumberFix).toBe(5n);
    expect(d.checks.map((c) => c.name).slice(0, 3)).toEqual(["ca-certificate", "crl-number", "crl"]);
    expect(check(d.checks, "crl-number")!.message).toBe("crlnumber (4) is not above the number of crl.pem (4): the next CRL would reuse a number; `pki doctor --repair` advances it");
  });

  it("an issuing CA's parent checks come after the CRL's", () => {
    const d = diagnose(healthy({ parent: { checks: [{ name: "parent", status: "ok", message: "signed" }], chainStale: true } }));
    expect(d.checks.map((c) => c.name).slice(1, 4)).toEqual(["crl", "parent", "key-modes"]);
    expect(d.chainStale).toBe(true);
  });

  it("a key readable by group or others fails with its mode", () => {
    const d = diagnose(healthy({ modes: [{ path: "/ca/private/", mode: 0o755 }, { path: "/ca/private/ca.key", mode: 0o644 }] }));
    expect(check(d.checks, "key-modes")!.message).toBe("readable by group or others: /ca/private/ (0755), /ca/private/ca.key (0644); run chmod 700 on private/ and chmod 600 on each key");
  });

  it("index: orphans of this CA are to be recorded, other files moved away, missing files restored", () => {
    const cert = { serial: "0C", notAfter: new Date("2031-01-01T00:00:00Z"), subject: [] } as unknown as ParsedCertificate;
    const d = diagnose(
      healthy({
        certFiles: ["0A", "0C", "0D"],
        stray: [
          { serial: "0C", file: "/ca/certs/0C.pem", cert, issuedByCa: true },
          { serial: "0D", file: "/ca/certs/0D.pem", cert: null, issuedByCa: false },
        ],
      }),
    );
    expect(d.orphans).toEqual([{ file: "/ca/certs/0C.pem", cert }]);
    expect(check(d.checks, "index")!.message).toBe(
      "1 certificate(s) issued by this CA but missing from index.txt (0C; a run was interrupted): `pki doctor --repair` records them; 1 index line(s) without their certs/<SERIAL>.pem (0B): restore them from a backup; 1 file(s) in certs/ that are not certificates of this CA (/ca/certs/0D.pem): move them away",
    );
  });

  it("index: a half last line and half meta lines are reported for --repair", () => {
    const d = diagnose(healthy({ index: readIndexForDoctor(INDEX + "V\t3101"), metaText: "0A\tserver\tweb\n0B\tcli" }));
    expect(d.indexTail).toBe("V\t3101");
    expect(d.badMetaLines).toBe(1);
    expect(check(d.checks, "index")!.status).toBe("fail");
    expect(check(d.checks, "index")!.message).toMatch(/index\.meta has 1 line\(s\) that do not parse.*index\.txt ends in a half line "V\\t3101"/);
  });

  it("an index that does not parse fails the index check with its error", () => {
    const d = diagnose(healthy({ index: readIndexForDoctor("X\tbroken\n") }));
    expect(check(d.checks, "index")!.status).toBe("fail");
    expect(check(d.checks, "index")!.message).toMatch(/^index\.txt line 1/);
  });

  it("bundle: missing, without the CA, or older than the last revocation is stale", () => {
    expect(diagnose(healthy({ bundle: { text: null, mtimeMs: 0, setting: false, expected: null } })).bundleStale).toBe(true);
    const other = diagnose(healthy({ bundle: { text: "", mtimeMs: 0, setting: false, expected: null } }));
    expect(check(other.checks, "bundle")!.message).toBe("/ca/ca-clients.crt does not hold this CA's certificate: run `pki bundle`");
    const old = diagnose(healthy({ bundle: { text: CA_PEM, mtimeMs: new Date("2029-01-01T00:00:00Z").getTime(), setting: "client", expected: CA_PEM } }));
    expect(old.bundleStale).toBe(true);
    expect(check(old.checks, "bundle")!.message).toBe("/ca/ca-clients.crt is older than the last revocation (2030-01-01T00:00:00.000Z): run `pki bundle --include-issued client` and reload nginx");
  });

  it("allow-list: missing or not the map built from the index is stale", () => {
    expect(check(diagnose(healthy({ allow: { setting: true, text: null, expected: null } })).checks, "allow-list")!.status).toBe("fail");
    const d = diagnose(healthy({ allow: { setting: "client", text: "old", expected: "new" } }));
    expect(d.allowStale).toBe(true);
    expect(check(d.checks, "allow-list")!.message).toBe("/ca/nginx-allow.map does not list exactly the valid certificates of profile client: `pki doctor --repair` rewrites it; then reload nginx");
    expect(check(diagnose(healthy({ allow: { setting: true, text: "same", expected: "same" } })).checks, "allow-list")!.status).toBe("ok");
  });

  it("temporary files and a dead process's lock are warnings", () => {
    const d = diagnose(healthy({ tmpFiles: ["certs/.0A.pem.123.abcdef01.w.tmp"], lock: { kind: "dead", holder: { pid: 123, host: "h", since: "then" } } }));
    expect(check(d.checks, "temp-files")).toEqual({ name: "temp-files", status: "warn", message: "1 temporary file(s) left by an interrupted run (certs/.0A.pem.123.abcdef01.w.tmp): `pki doctor --repair` removes them" });
    expect(check(d.checks, "lock")!.message).toBe("/ca/.lock was left by a process that is gone (pid 123): the next pki command takes it over; `pki doctor --repair` removes it");
    // thousands (a batch killed half-way): five named, the rest counted, one short line
    const many = Array.from({ length: 2976 }, (_, i) => `certs/.${i}.pem.123.abcdef01.w.tmp`);
    const m = check(diagnose(healthy({ tmpFiles: many })).checks, "temp-files")!.message;
    expect(m).toBe("2976 temporary file(s) left by an interrupted run (certs/.0.pem.123.abcdef01.w.tmp, certs/.1.pem.123.abcdef01.w.tmp, certs/.2.pem.123.abcdef01.w.tmp, certs/.3.pem.123.abcdef01.w.tmp, certs/.4.pem.123.abcdef01.w.tmp and 2971 more): `pki doctor --repair` removes them");
    expect(check(diagnose(healthy({ lock: { kind: "strange", what: "not a regular file" } })).checks, "lock")!.message).toBe("/ca/.lock is not a regular file: the next pki command removes it; `pki doctor --repair` removes it now");
  });
});

describe("the repairs' edits", () => {
  it("cutIndexTail removes the half line only while it is still there", () => {
    expect(cutIndexTail(INDEX + "V\t31", "V\t31")).toBe(INDEX);
    expect(cutIndexTail(INDEX, "V\t31")).toBeNull();
  });

  it("cleanMeta keeps the lines that parse", () => {
    expect(cleanMeta("0A\tserver\tweb\n0B\tcli\n\n0C\tclient\t-\n")).toBe("0A\tserver\tweb\n0C\tclient\t-\n");
  });

  it("recordOrphans appends a V line for each certificate the index lacks", () => {
    const cert = { serial: "0C", notAfter: new Date("2031-01-01T00:00:00Z"), subject: [[{ type: "2.5.4.3", value: "c" }]] } as unknown as ParsedCertificate;
    const known = { ...cert, serial: "0B" } as ParsedCertificate;
    const r = recordOrphans(INDEX, [cert, known]);
    expect(r.added).toEqual([cert]);
    expect(parseIndex(r.text).map((e) => [e.status, e.serial])).toEqual([["R", "0A"], ["V", "0B"], ["V", "0C"]]);
    expect(recordOrphans("V\t310101000000Z\t\t0B\tunknown\t/CN=b", [cert]).text.split("\n")).toHaveLength(3);
  });

  it("restoreRevocations takes time and reason from the CRL entry; drops without a line are left", () => {
    const index = parseIndex(INDEX);
    const revokedAt = new Date("2030-02-03T04:05:06Z");
    const r = restoreRevocations(index, [{ serial: "0B", revokedAt, reason: "superseded" }], [{ serial: "0B" }, { serial: "0F" }]);
    expect(r.update).toEqual([{ ...index[1], status: "R", revokedAt, reason: "superseded", holdInstruction: undefined, invalidityDate: undefined }]);
    expect(r.left).toBe(1);
  });
});
