/**
 * Our DER-built CA certificates, leaves and CRLs judged by an independent
 * X.509 stack: @peculiar/x509 on @peculiar/webcrypto (the library pki's
 * design started from; pki builds its own DER for speed, see README "Design").
 * Every CA key type: the signatures verify, the chain builds, the CRL lists
 * what the index says.
 */
import * as crypto from "node:crypto";
import { Crypto } from "@peculiar/webcrypto";
import * as x509 from "@peculiar/x509";
import { beforeAll, describe, expect, it } from "vitest";
import { assembleSigned, authorityKeyIdentifier, caExtensions, leafExtensions, signatureAlgorithmFor, tbsCertificate, type KeyKind } from "../../src/core/certificate.js";
import { signCrlFromIndex } from "../../src/core/crl.js";
import { encodeName, parseDn } from "../../src/core/names.js";
import { keyIdentifier, keyKindOf, signerFor, spkiDer } from "../../src/crypto/keys.js";
import { builtinProfile } from "./build.js";

beforeAll(() => x509.cryptoProvider.set(new Crypto()));

const CA_KEYS: Array<[string, () => crypto.KeyPairKeyObjectResult]> = [
  ["ec-p256", () => crypto.generateKeyPairSync("ec", { namedCurve: "P-256" })],
  ["ec-p384", () => crypto.generateKeyPairSync("ec", { namedCurve: "P-384" })],
  ["rsa-2048", () => crypto.generateKeyPairSync("rsa", { modulusLength: 2048 })],
  ["ed25519", () => crypto.generateKeyPairSync("ed25519")],
];

describe.each(CA_KEYS)("a %s CA built by src/core", (_name, make) => {
  it("has a CA certificate, a leaf and a CRL whose signatures @peculiar/x509 verifies", async () => {
    const ca = make();
    const { signer, algorithm } = signerFor(ca.privateKey);
    const caSpki = spkiDer(ca.publicKey);
    const caKeyId = keyIdentifier(caSpki);
    const caName = encodeName(parseDn("CN=Cross CA,O=Acme"));
    const now = new Date("2026-06-01T00:00:00Z");
    const caTbs = tbsCertificate({
      serial: Uint8Array.from([0x41, ...crypto.randomBytes(16)]),
      signatureAlgorithm: algorithm.der,
      issuer: caName,
      notBefore: now,
      notAfter: new Date("2036-06-01T00:00:00Z"),
      subject: caName,
      spki: caSpki,
      extensions: [...caExtensions({ codeSigning: false, subjectKeyId: caKeyId }), authorityKeyIdentifier(caKeyId)],
    });
    const caDer = assembleSigned(caTbs, algorithm.der, signer(caTbs));

    const leafKey = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
    const leafSpki = spkiDer(leafKey.publicKey);
    const leafTbs = tbsCertificate({
      serial: Uint8Array.from([0x42, ...crypto.randomBytes(16)]),
      signatureAlgorithm: algorithm.der,
      issuer: caName,
      notBefore: now,
      notAfter: new Date("2027-06-01T00:00:00Z"),
      subject: encodeName(parseDn("CN=agent1")),
      spki: leafSpki,
      extensions: leafExtensions({
        profile: builtinProfile("client"),
        keyKind: keyKindOf(leafKey.privateKey) as KeyKind,
        sans: [],
        subjectEmpty: false,
        subjectKeyId: keyIdentifier(leafSpki),
        authorityKeyId: caKeyId,
        urls: {},
      }),
    });
    const leafDer = assembleSigned(leafTbs, algorithm.der, signer(leafTbs));

    const caCert = new x509.X509Certificate(caDer);
    const leaf = new x509.X509Certificate(leafDer);
    expect(await caCert.verify({ signatureOnly: true })).toBe(true); // self-signed
    expect(await leaf.verify({ publicKey: caCert, signatureOnly: true })).toBe(true);
    const chain = await new x509.X509ChainBuilder({ certificates: [caCert] }).build(leaf);
    expect(chain.map((c) => c.subject)).toEqual([leaf.subject, caCert.subject]);
    expect(leaf.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(false);

    // a tampered leaf does not verify: the check can fail
    const bad = Uint8Array.from(leafDer);
    bad[bad.length - 10]! ^= 0x01;
    expect(await new x509.X509Certificate(bad).verify({ publicKey: caCert, signatureOnly: true })).toBe(false);

    const index = Buffer.from(`R\t270601000000Z\t260602000000Z,keyCompromise\t${new x509.X509Certificate(leafDer).serialNumber.toUpperCase()}\tunknown\t/CN=agent1\n`);
    const { der } = signCrlFromIndex({
      signatureAlgorithm: signatureAlgorithmFor(keyKindOf(ca.privateKey)).der,
      issuer: caName,
      thisUpdate: now,
      nextUpdate: new Date("2026-06-08T00:00:00Z"),
      crlNumber: 7n,
      authorityKeyId: caKeyId,
      index,
      sign: signer,
    });
    const crl = new x509.X509Crl(der);
    expect(await crl.verify({ publicKey: caCert })).toBe(true);
    expect(crl.entries.map((e) => e.serialNumber.toUpperCase())).toEqual([leaf.serialNumber.toUpperCase()]);
    expect(crl.entries[0]!.reason).toBe(x509.X509CrlReason.keyCompromise);
  });
});
