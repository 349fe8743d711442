// RFC 7512 PKCS#11 URIs as pki reads them (src/core/pkcs11-uri.ts).
import { describe, expect, it } from "vitest";
import { describePkcs11Uri, encodeAttr, parsePkcs11Uri } from "../../src/core/pkcs11-uri.js";

const refused = (s: string, re: RegExp) => {
  let err: unknown;
  try {
    parsePkcs11Uri(s);
  } catch (e) {
    err = e;
  }
  expect(err, s).toBeDefined();
  expect(err).toMatchObject({ code: "USAGE", exitCode: 2 });
  expect((err as Error).message).toMatch(re);
  return (err as Error).message;
};

describe("parsePkcs11Uri", () => {
  it("reads the contract's example", () => {
    expect(parsePkcs11Uri("pkcs11:token=pki;object=ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/pki/pin")).toEqual({
      token: "pki",
      object: "ca",
      modulePath: "/usr/lib/softhsm/libsofthsm2.so",
      pinFile: "/etc/pki/pin",
    });
  });

  it("reads the YubiHSM and Nitrokey HSM forms of the README", () => {
    expect(parsePkcs11Uri("pkcs11:token=YubiHSM;object=pki-ca;type=private?module-path=/usr/lib/x86_64-linux-gnu/pkcs11/yubihsm_pkcs11.so&pin-source=file:/etc/pki/yubihsm.pin")).toMatchObject({
      token: "YubiHSM",
      object: "pki-ca",
      type: "private",
      modulePath: "/usr/lib/x86_64-linux-gnu/pkcs11/yubihsm_pkcs11.so",
    });
    expect(parsePkcs11Uri("pkcs11:token=SmartCard-HSM%20%28UserPIN%29;id=%01?module-name=opensc-pkcs11.so")).toMatchObject({
      token: "SmartCard-HSM (UserPIN)",
      id: Uint8Array.from([1]),
      moduleName: "opensc-pkcs11.so",
    });
  });

  it("percent-decodes values (RFC 7512 2.3): UTF-8 text, raw id bytes", () => {
    const u = parsePkcs11Uri("pkcs11:token=Caf%C3%A9%3B%3F;id=%00%ff%A0;object=a%2Fb;serial=DECC0401648;slot-id=7;manufacturer=SoftHSM%20project;model=SoftHSM%20v2");
    expect(u.token).toBe("Café;?");
    expect([...u.id!]).toEqual([0, 255, 160]);
    expect(u.object).toBe("a/b");
    expect(u.serial).toBe("DECC0401648");
    expect(u.slotId).toBe(7);
    expect(u.manufacturer).toBe("SoftHSM project");
    expect(u.model).toBe("SoftHSM v2");
  });

  it("accepts the pin-source forms file:/p, file:///p, file://localhost/p and /p; names are case-insensitive", () => {
    for (const src of ["file:/run/pin", "file:///run/pin", "file://localhost/run/pin", "/run/pin", "FILE:/run/pin"]) {
      expect(parsePkcs11Uri(`PKCS11:object=k?Pin-Source=${src}`).pinFile, src).toBe("/run/pin");
    }
  });

  it("ignores vendor attributes (x-...)", () => {
    expect(parsePkcs11Uri("pkcs11:object=k;x-vendor=1?x-other=2")).toEqual({ object: "k" });
  });

  it("refuses a pin-value without echoing it", () => {
    const msg = refused("pkcs11:object=k?pin-value=s3cret-4711", /pin-value puts the PIN/);
    expect(msg).not.toContain("s3cret");
  });

  it("refuses what is not a usable key URI", () => {
    refused("pkcs:object=k", /must start with "pkcs11:"/);
    refused("pkcs11:token=pki", /name the key with "object=<label>" or "id=<bytes>"/);
    refused("pkcs11:object=a;object=b", /"object" appears twice/);
    refused("pkcs11:label=ca", /unknown path attribute "label"/);
    refused("pkcs11:object=ca?module=x", /unknown query attribute "module"/);
    refused("pkcs11:object=c%4", /"%" not followed by two hex digits/);
    refused("pkcs11:object=c%zz", /"%" not followed by two hex digits/);
    refused("pkcs11:object=c a", /must be percent-encoded/);
    refused("pkcs11:object=%ff%fe", /not UTF-8/);
    refused("pkcs11:object=ca;type=cert", /type=cert: the CA key is a private key/);
    refused("pkcs11:object=ca;type=bogus", /"type" must be one of/);
    refused("pkcs11:object=ca;slot-id=x1", /"slot-id" must be a decimal number/);
    refused("pkcs11:object=ca?pin-source=relative/pin", /pin-source must be a file: URI or an absolute path/);
    refused("pkcs11:object=ca?pin-source=file://host.example/pin", /remote host/);
    refused("pkcs11:object=ca?module-path=lib.so", /module-path must be an absolute path/);
    refused("pkcs11:object=ca?module-name=/usr/lib/x.so", /module-name is a library name/);
    refused("pkcs11:object=ca;id=", /"id" is empty/);
    refused("pkcs11:object=ca#frag", /"#" is not allowed/);
    refused("pkcs11:object", /is not name=value/);
    refused("pkcs11:object=" + "a".repeat(5000), /longer than 4096/);
  });
});

describe("describePkcs11Uri / encodeAttr", () => {
  it("names the key by its path part only: no module, no PIN file", () => {
    const u = parsePkcs11Uri("pkcs11:token=My%20Token;object=ca;id=%01%02?module-path=/x.so&pin-source=file:/etc/pin");
    expect(describePkcs11Uri(u)).toBe("pkcs11:token=My%20Token;object=ca;id=%01%02");
  });

  it("round-trips through the parser", () => {
    for (const v of ["plain", "with space", "semi;colon", "q?mark", "pct%", "Café", "a/b"]) {
      expect(parsePkcs11Uri(`pkcs11:object=${encodeAttr(v)}`).object, v).toBe(v);
    }
  });
});
