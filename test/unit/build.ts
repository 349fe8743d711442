/**
 * Unit-test helper: a real certificate built by src/core from a profile and
 * signed with a real node:crypto key, so that independent parsers (our own
 * parse.ts, @peculiar/x509, openssl) can judge the DER.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { assembleSigned, leafExtensions, signatureAlgorithmFor, tbsCertificate, type CaUrls, type KeyKind } from "../../src/core/certificate.js";
import { encodeName, parseDn, type San } from "../../src/core/names.js";
import { validateProfile, type Profile } from "../../src/core/profiles.js";
import { parseSpki } from "../../src/core/parse.js";
import * as der from "../../src/core/der.js";
import { ROOT } from "../helpers.js";

export const BUILTIN = ["code-signing", "ssl", "server", "client"] as const;

export function builtinProfile(name: string): Profile {
  const file = path.join(ROOT, "templates", "profiles", `${name}.json`);
  return validateProfile(name, JSON.parse(fs.readFileSync(file, "utf8")), `templates/profiles/${name}.json`);
}

const keyCache = new Map<string, crypto.KeyPairKeyObjectResult>();
export function keyPair(kind: "rsa" | "ec-p256" | "ed25519"): crypto.KeyPairKeyObjectResult {
  let k = keyCache.get(kind);
  if (!k) {
    k =
      kind === "rsa"
        ? crypto.generateKeyPairSync("rsa", { modulusLength: 2048 })
        : kind === "ed25519"
          ? crypto.generateKeyPairSync("ed25519")
          : crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
    keyCache.set(kind, k);
  }
  return k;
}

export const spkiOf = (k: crypto.KeyObject): Uint8Array => new Uint8Array(k.export({ type: "spki", format: "der" }));

export function keyId(spki: Uint8Array): Uint8Array {
  const info = parseSpki(spki, der.read(spki));
  return new Uint8Array(crypto.createHash("sha1").update(info.keyBits).digest());
}

/** A leaf of `profile` for a subject key of `kind`, signed by a P-256 "CA" key. */
export function leafCert(profile: Profile, kind: "rsa" | "ec-p256" | "ed25519", sans: San[], urls: CaUrls = {}): Uint8Array {
  const subjectKey = keyPair(kind);
  const caKey = keyPair("ec-p256");
  const spki = spkiOf(subjectKey.publicKey);
  const alg = signatureAlgorithmFor("ec-p256");
  const tbs = tbsCertificate({
    serial: Uint8Array.from([0x40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]),
    signatureAlgorithm: alg.der,
    issuer: encodeName(parseDn("CN=Unit CA,O=Acme")),
    notBefore: new Date("2026-01-01T00:00:00Z"),
    notAfter: new Date("2027-01-01T00:00:00Z"),
    subject: encodeName(parseDn("CN=leaf.example.lan,O=Acme")),
    spki,
    extensions: leafExtensions({
      profile,
      keyKind: (kind === "rsa" ? "rsa" : kind) as KeyKind,
      sans,
      subjectEmpty: false,
      subjectKeyId: keyId(spki),
      authorityKeyId: keyId(spkiOf(caKey.publicKey)),
      urls,
    }),
  });
  return assembleSigned(tbs, alg.der, new Uint8Array(crypto.sign("sha256", tbs, caKey.privateKey)));
}
