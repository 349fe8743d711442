import * as x509 from "@peculiar/x509";
import { describe, expect, it } from "vitest";
import { OID, keyUsageValue } from "../../src/core/certificate.js";
import { decodeAkiKeyId, decodeBasicConstraints, decodeEku, decodeKeyId, decodeKeyUsage, decodeSans, findExtension, parseCertificate } from "../../src/core/parse.js";
import { validateProfile, EKU_OIDS } from "../../src/core/profiles.js";
import { PkiError } from "../../src/core/errors.js";
import * as der from "../../src/core/der.js";
import { BUILTIN, builtinProfile, keyId, keyPair, leafCert, spkiOf } from "./build.js";

/** The contract's table of built-in profiles. */
const TABLE: Record<string, { ku: string[]; kuRsa: string[]; eku: string[] }> = {
  "code-signing": { ku: ["digitalSignature"], kuRsa: ["digitalSignature"], eku: ["codeSigning", "clientAuth"] },
  ssl: { ku: ["digitalSignature"], kuRsa: ["digitalSignature", "keyEncipherment"], eku: ["serverAuth", "clientAuth"] },
  server: { ku: ["digitalSignature"], kuRsa: ["digitalSignature", "keyEncipherment"], eku: ["serverAuth"] },
  client: { ku: ["digitalSignature"], kuRsa: ["digitalSignature"], eku: ["clientAuth"] },
};
const KU_FLAG: Record<string, number> = { digitalSignature: 1, nonRepudiation: 2, keyEncipherment: 4, keyCertSign: 32, cRLSign: 64 };

describe("built-in profiles -> extensions", () => {
  for (const name of BUILTIN) {
    for (const kind of ["ec-p256", "rsa", "ed25519"] as const) {
      it(`${name} with a ${kind} key matches the contract (our parser and @peculiar/x509 agree)`, () => {
        const profile = builtinProfile(name);
        const want = TABLE[name]!;
        const wantKu = kind === "rsa" ? want.kuRsa : want.ku;
        const sans = [{ type: "dns" as const, value: "leaf.example.lan" }];
        const certDer = leafCert(profile, kind, name === "code-signing" ? [{ type: "email", value: "a@example.lan" }] : sans);

        // --- our own parser
        const c = parseCertificate(certDer);
        const bc = findExtension(c.extensions, OID.basicConstraints)!;
        expect(bc.critical).toBe(true);
        expect(decodeBasicConstraints(bc.value)).toEqual({ ca: false, pathLen: undefined });
        const ku = findExtension(c.extensions, OID.keyUsage)!;
        expect(ku.critical).toBe(true);
        expect(decodeKeyUsage(ku.value).sort()).toEqual([...wantKu].sort());
        const eku = findExtension(c.extensions, OID.extKeyUsage)!;
        expect(eku.critical).toBe(false);
        expect(decodeEku(eku.value)).toEqual(want.eku);
        const subjectSpki = spkiOf(keyPair(kind).publicKey);
        expect(der.toHex(decodeKeyId(findExtension(c.extensions, OID.subjectKeyIdentifier)!.value))).toBe(der.toHex(keyId(subjectSpki)));
        expect(der.toHex(decodeAkiKeyId(findExtension(c.extensions, OID.authorityKeyIdentifier)!.value)!)).toBe(der.toHex(keyId(spkiOf(keyPair("ec-p256").publicKey))));
        expect(findExtension(c.extensions, OID.crlDistributionPoints)).toBeUndefined();

        // --- @peculiar/x509, an independent parser
        const x = new x509.X509Certificate(certDer);
        const xbc = x.getExtension(x509.BasicConstraintsExtension)!;
        expect(xbc.ca).toBe(false);
        expect(xbc.critical).toBe(true);
        const xku = x.getExtension(x509.KeyUsagesExtension)!;
        expect(xku.critical).toBe(true);
        expect(xku.usages).toBe(wantKu.reduce((a, u) => a | KU_FLAG[u]!, 0));
        const xeku = x.getExtension(x509.ExtendedKeyUsageExtension)!;
        expect(xeku.usages).toEqual(want.eku.map((e) => EKU_OIDS[e as keyof typeof EKU_OIDS]));
        expect(x.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId.toUpperCase()).toBe(der.toHex(keyId(subjectSpki)));
        const xsan = x.getExtension(x509.SubjectAlternativeNameExtension)!;
        expect(xsan.critical).toBe(false);
        expect(xsan.names.items.map((n) => `${n.type}:${n.value}`)).toEqual(name === "code-signing" ? ["email:a@example.lan"] : ["dns:leaf.example.lan"]);
      });
    }
  }

  it("ssl never carries codeSigning, whatever the key", () => {
    for (const kind of ["ec-p256", "rsa", "ed25519"] as const) {
      const c = parseCertificate(leafCert(builtinProfile("ssl"), kind, []));
      expect(decodeEku(findExtension(c.extensions, OID.extKeyUsage)!.value)).not.toContain("codeSigning");
    }
  });

  it("keyEncipherment only for RSA subject keys", () => {
    for (const name of BUILTIN) {
      for (const kind of ["ec-p256", "ed25519"] as const) {
        const c = parseCertificate(leafCert(builtinProfile(name), kind, []));
        expect(decodeKeyUsage(findExtension(c.extensions, OID.keyUsage)!.value)).not.toContain("keyEncipherment");
      }
    }
  });

  it("no SAN extension when there are no names; URLs from the CA settings become CDP and AIA", () => {
    const certDer = leafCert(builtinProfile("client"), "ec-p256", [], {
      crlUrl: "http://pki.example.lan/crl.pem",
      ocspUrl: "http://ocsp.example.lan/",
      caIssuersUrl: "http://pki.example.lan/ca.crt",
    });
    const c = parseCertificate(certDer);
    expect(findExtension(c.extensions, OID.subjectAltName)).toBeUndefined();
    const x = new x509.X509Certificate(certDer);
    const cdp = x.getExtension(x509.CRLDistributionPointsExtension)!;
    expect(cdp.distributionPoints).toHaveLength(1);
    const aia = x.getExtension(x509.AuthorityInfoAccessExtension)!;
    expect(aia.ocsp.map((g) => g.value)).toEqual(["http://ocsp.example.lan/"]);
    expect(aia.caIssuers.map((g) => g.value)).toEqual(["http://pki.example.lan/ca.crt"]);
  });

  it("the server profile requires SANs and adds the CN", () => {
    const p = builtinProfile("server");
    expect(p.san).toBe("required");
    expect(p.cnAsSan).toBe(true);
  });
});

describe("profile validation", () => {
  const err = (f: () => unknown): PkiError => {
    try {
      f();
    } catch (e) {
      return e as PkiError;
    }
    throw new Error("no error thrown");
  };

  it("refuses an unknown key usage name, naming it and the file", () => {
    const e = err(() => validateProfile("x", { keyUsage: ["digitalSignature", "keyEncypherment"] }, "profiles/x.json"));
    expect(e).toBeInstanceOf(PkiError);
    expect(e.code).toBe("PROFILE_INVALID");
    expect(e.message).toContain("keyEncypherment");
    expect(e.message).toContain("profiles/x.json");
  });

  it("refuses an unknown extended key usage name", () => {
    const e = err(() => validateProfile("x", { keyUsage: ["digitalSignature"], extendedKeyUsage: ["serverAuthh"] }, "x.json"));
    expect(e.code).toBe("PROFILE_INVALID");
    expect(e.message).toContain("serverAuthh");
    // a dotted OID is fine
    expect(validateProfile("x", { keyUsage: ["digitalSignature"], extendedKeyUsage: ["1.3.6.1.4.1.311.10.3.12"] }, "x.json").extendedKeyUsage).toEqual(["1.3.6.1.4.1.311.10.3.12"]);
  });

  it("refuses an unknown field instead of ignoring it", () => {
    const e = err(() => validateProfile("x", { keyUsage: ["digitalSignature"], extKeyUsage: ["clientAuth"] }, "x.json"));
    expect(e.code).toBe("PROFILE_INVALID");
    expect(e.message).toContain('"extKeyUsage"');
  });

  it("refuses keyCertSign and cRLSign in a leaf profile (also in rsaKeyUsage)", () => {
    for (const field of ["keyUsage", "rsaKeyUsage"]) {
      for (const u of ["keyCertSign", "cRLSign"]) {
        const data = { keyUsage: ["digitalSignature"], [field]: field === "keyUsage" ? ["digitalSignature", u] : [u] };
        const e = err(() => validateProfile("x", data, "x.json"));
        expect(e.code).toBe("PROFILE_INVALID");
        expect(e.message).toContain(u);
      }
    }
  });

  it("refuses other malformations", () => {
    const bad: unknown[] = [
      [],
      null,
      "ssl",
      { keyUsage: [] },
      { keyUsage: "digitalSignature" },
      { keyUsage: ["digitalSignature"], san: "maybe" },
      { keyUsage: ["digitalSignature"], sanTypes: ["dns", "x400"] },
      { keyUsage: ["digitalSignature"], days: 0 },
      { keyUsage: ["digitalSignature"], days: 1.5 },
      { keyUsage: ["digitalSignature"], cnAsSan: "yes" },
    ];
    for (const d of bad) expect(err(() => validateProfile("x", d, "x.json")).code).toBe("PROFILE_INVALID");
    expect(err(() => validateProfile("../evil", { keyUsage: ["digitalSignature"] }, "x.json")).code).toBe("PROFILE_INVALID");
  });

  it("every built-in profile validates", () => {
    for (const n of BUILTIN) expect(builtinProfile(n).name).toBe(n);
  });
});

describe("keyUsage BIT STRING is DER (trailing zero bits dropped)", () => {
  const hex = (b: Uint8Array) => der.toHex(b);
  it.each([
    [["digitalSignature"], "03020780"],
    [["digitalSignature", "keyEncipherment"], "030205A0"],
    [["keyCertSign", "cRLSign"], "03020106"],
    [["digitalSignature", "keyCertSign", "cRLSign"], "03020186"],
    [["keyAgreement"], "03020308"],
    [["cRLSign"], "03020102"],
    [["decipherOnly"], "0303070080"],
    [["digitalSignature", "decipherOnly"], "0303078080"],
    [[], "030100"],
  ] as const)("%j -> %s", (usages, want) => {
    expect(hex(keyUsageValue(usages as never))).toBe(want);
    // and it round-trips through our decoder
    expect(decodeKeyUsage(keyUsageValue(usages as never)).sort()).toEqual([...usages].sort());
  });

  it("openssl-style decode of sans via decodeSans", () => {
    const c = parseCertificate(leafCert(builtinProfile("ssl"), "ec-p256", [{ type: "ip", value: "fd00::5" }, { type: "uri", value: "spiffe://example.lan/a" }]));
    expect(decodeSans(findExtension(c.extensions, OID.subjectAltName)!.value)).toEqual([
      { type: "ip", value: "fd00::5" },
      { type: "uri", value: "spiffe://example.lan/a" },
    ]);
  });
});
