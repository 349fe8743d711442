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
  it("RFC 2253: values that need nothing escaped come out as they are, the rest as the byte-by-byte reference", () => {
    // the escaper before it had a fast path, kept as the reference
    const reference = (value: string): string => {
      const bytes = new TextEncoder().encode(value);
      let s = "";
      bytes.forEach((b, i) => {
        const ch = String.fromCharCode(b);
        if (b < 0x20 || b >= 0x7f) s += "\\" + b.toString(16).toUpperCase().padStart(2, "0");
        else if (',+"\\<>;'.includes(ch)) s += "\\" + ch;
        else if ((i === 0 && (ch === "#" || ch === " ")) || (i === bytes.length - 1 && ch === " ")) s += "\\" + ch;
        else s += ch;
      });
      return s;
    };
    const cn = (value: string) => rfc2253Dn([{ type: "2.5.4.3", value }]).slice(3);
    const alphabet = ["a", "Z", "0", " ", "#", ",", "+", '"', "\\", "<", ">", ";", "=", "/", "-", "\x00", "\x1f", "\x7f", "é", "\u{1F512}", "~"];
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    const values = ["", "agent-42", "Example Org", " lead", "trail ", "#hash", "mid#dle", "a b"];
    for (let k = 0; k < 3000; k++) values.push(Array.from({ length: 1 + (next() % 6) }, () => alphabet[next() % alphabet.length]).join(""));
    for (const v of values) expect(cn(v), JSON.stringify(v)).toBe(reference(v));
    expect(cn("agent-42")).toBe("agent-42");
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
