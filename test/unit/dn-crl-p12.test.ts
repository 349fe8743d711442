import { describe, expect, it } from "vitest";
import { onelineDn, parseDn } from "../../src/core/names.js";
import { parseOnelineDn, rfc2253Dn } from "../../src/core/dn-format.js";
import { pkcs12Kdf } from "../../src/crypto/pkcs12.js";

describe("DN forms", () => {
  it("index.txt's oneline form reads back into the same RDNs", () => {
    const rdns = parseDn("C=FR,O=Acme Paris,CN=Zoë \\, x\\\\y");
    expect(parseOnelineDn(onelineDn(rdns)).map((r) => [r.type, r.value])).toEqual(rdns.map((r) => [r.type, r.value]));
    // a "/" inside a value (refused for new certificates, possible in an imported index) reads back too
    const slash = [{ type: "2.5.4.10", value: "R/D" }, { type: "2.5.4.3", value: "a" }];
    expect(parseOnelineDn(onelineDn(slash)).map((r) => r.value)).toEqual(["R/D", "a"]);
  });
  it("RFC 2253 as OpenSSL prints it: reversed, escaped, UTF-8 bytes as \\XX", () => {
    expect(rfc2253Dn(parseDn("C=FR,O=Acme,CN=web1"))).toBe("CN=web1,O=Acme,C=FR");
    expect(rfc2253Dn([{ type: "2.5.4.3", value: "#a+b; c " }])).toBe("CN=\\#a\\+b\\; c\\ ");
    expect(rfc2253Dn(parseDn("CN=é"))).toBe("CN=\\C3\\A9");
  });
});

describe("PKCS#12 key derivation (RFC 7292 B.2)", () => {
  // vectors from OpenSSL's test/pkcs12_format_test / the classic "smeg" vectors of the PKCS#12 KDF
  it("derives the known 3DES key and IV for password 'smeg'", () => {
    const salt = Buffer.from("0A58CF64530D823F", "hex");
    expect(pkcs12Kdf("smeg", salt, 1, 1, 24).toString("hex").toUpperCase()).toBe("8AAAE6297B6CB04642AB5B077851284EB7128F1A2A7FBCA3");
    expect(pkcs12Kdf("smeg", salt, 2, 1, 8).toString("hex").toUpperCase()).toBe("79993DFE048D3B76");
  });
});
