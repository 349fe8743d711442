import { describe, expect, it } from "vitest";
import { classifySan, decodeName, encodeName, formatDn, parseDn, parseSanList, ipToBytes, bytesToIp, dnFromParts } from "../../src/core/names.js";
import { PkiError } from "../../src/core/errors.js";
import * as der from "../../src/core/der.js";

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(PkiError);
    return (e as PkiError).code;
  }
  return "no error";
}

describe("SAN classification", () => {
  it.each([
    ["web1.example.lan", "dns", "web1.example.lan"],
    ["WEB1.Example.LAN", "dns", "web1.example.lan"],
    ["dns:web1.example.lan", "dns", "web1.example.lan"],
    ["DNS:web1.example.lan", "dns", "web1.example.lan"],
    ["localhost", "dns", "localhost"],
    ["*.agents.example.lan", "dns", "*.agents.example.lan"],
    ["_srv.example.lan", "dns", "_srv.example.lan"],
    ["xn--caf-dma.example.lan", "dns", "xn--caf-dma.example.lan"],
    ["10.0.0.5", "ip", "10.0.0.5"],
    ["ip:10.0.0.5", "ip", "10.0.0.5"],
    ["0.0.0.0", "ip", "0.0.0.0"],
    ["255.255.255.255", "ip", "255.255.255.255"],
    ["::1", "ip", "::1"],
    ["::", "ip", "::"],
    ["fd00:0:0:0:0:0:0:5", "ip", "fd00::5"],
    ["FD00::0005", "ip", "fd00::5"],
    ["2001:db8::", "ip", "2001:db8::"],
    ["1:0:0:2:0:0:0:3", "ip", "1:0:0:2::3"],
    ["1:0:0:2:0:0:3:4", "ip", "1::2:0:0:3:4"],
    ["1:2:3:4:5:6:7:8", "ip", "1:2:3:4:5:6:7:8"],
    ["::ffff:10.0.0.1", "ip", "::ffff:a00:1"],
    ["64:ff9b::192.0.2.33", "ip", "64:ff9b::c000:221"],
    ["alice@example.lan", "email", "alice@example.lan"],
    ["email:alice@example.lan", "email", "alice@example.lan"],
    ["user@10.0.0.1", "email", "user@10.0.0.1"],
    ["https://app.example.lan/x", "uri", "https://app.example.lan/x"],
    ["https://user@app.example.lan/", "uri", "https://user@app.example.lan/"],
    ["spiffe://example.lan/ns/prod/sa/agent", "uri", "spiffe://example.lan/ns/prod/sa/agent"],
    ["uri:urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", "uri", "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"],
    ["  web1.example.lan  ", "dns", "web1.example.lan"],
  ])("%j -> %s:%s", (input, type, value) => {
    expect(classifySan(input)).toEqual({ type, value });
  });

  it.each([
    "ip:999.1.1.1",
    "ip:1.2.3",
    "ip:01.2.3.4",
    "ip:fe80::1%eth0",
    "ip:1::2::3",
    "ip:1:2:3:4:5:6:7:8:9",
    "ip:1:2:3:4:5:6:7",
    "ip:12345::1",
    "ip:::ffff:999.0.0.1",
    "ip:web1",
    "email:alice",
    "email:@example.lan",
    "email:alice@",
    "email:a@b@c",
    "email:al ice@example.lan",
    "email:élodie@example.lan",
    "uri:not a uri",
    "uri:nocolon",
    "-bad.example.lan",
    "bad-.example.lan",
    "a..b.example.lan",
    "exa mple.lan",
    "café.example.lan",
    "a".repeat(64) + ".example.lan",
    "dns:web1/x.example.lan",
  ])("refuses %j with BAD_INPUT", (input) => {
    expect(code(() => classifySan(input))).toBe("BAD_INPUT");
  });

  it("wildcards: only a whole leftmost label, and not right above a top-level name", () => {
    expect(classifySan("*.example.lan").value).toBe("*.example.lan");
    for (const w of ["*.lan", "*", "a.*.example.lan", "w*.example.lan", "*w.example.lan", "**.example.lan", "*.*.example.lan"]) {
      expect(code(() => classifySan(w)), w).toBe("BAD_INPUT");
    }
  });

  it("an empty entry is a usage error", () => {
    expect(code(() => classifySan("dns:"))).toBe("USAGE");
    expect(code(() => classifySan("ip:  "))).toBe("USAGE");
  });

  it("a trailing dot is dropped: the name clients connect to has none", () => {
    expect(classifySan("web1.example.lan.")).toEqual({ type: "dns", value: "web1.example.lan" });
  });

  it("parseSanList: comma-separated, empty entries skipped, duplicates dropped", () => {
    expect(parseSanList("web1.example.lan, ip:10.0.0.5,,WEB1.example.lan,10.0.0.5,email:a@example.lan")).toEqual([
      { type: "dns", value: "web1.example.lan" },
      { type: "ip", value: "10.0.0.5" },
      { type: "email", value: "a@example.lan" },
    ]);
    expect(parseSanList(undefined)).toEqual([]);
    expect(parseSanList("")).toEqual([]);
  });

  it("ipToBytes / bytesToIp", () => {
    expect([...ipToBytes("10.1.2.3")!]).toEqual([10, 1, 2, 3]);
    expect(ipToBytes("::1")).toHaveLength(16);
    expect(bytesToIp(ipToBytes("2001:db8:0:0:1:0:0:1")!)).toBe("2001:db8::1:0:0:1");
    expect(ipToBytes("10.0.0.256")).toBeNull();
    expect(ipToBytes("")).toBeNull();
  });
});

describe("DN parsing", () => {
  const CN = "2.5.4.3";
  it("parses RFC 4514 style in the order written", () => {
    expect(parseDn("CN=web1,O=Acme,C=FR")).toEqual([
      { type: CN, value: "web1" },
      { type: "2.5.4.10", value: "Acme" },
      { type: "2.5.4.6", value: "FR" },
    ]);
  });
  it("parses OpenSSL's slash form", () => {
    expect(parseDn("/C=FR/O=Acme/CN=web1").map((r) => r.value)).toEqual(["FR", "Acme", "web1"]);
  });
  it("honours escapes", () => {
    expect(parseDn("CN=Acme\\, Inc.,O=A\\+B").map((r) => r.value)).toEqual(["Acme, Inc.", "A+B"]);
    // an escaped "/" parses, but a "/" in a value is refused (see checkRdn)
    expect(() => parseDn("/O=R\\/D/CN=x")).toThrow(/contains '\/'/);
    expect(parseDn("CN=back\\\\slash")[0]!.value).toBe("back\\slash");
  });
  it("accepts attribute names in any case, aliases and dotted OIDs", () => {
    expect(parseDn("cn=a,o=b,ou=c,l=d,st=e,c=FR,emailAddress=x@y.lan,E=z@y.lan,DC=lan,UID=u1,2.5.4.3=b").map((r) => r.type)).toEqual([
      CN, "2.5.4.10", "2.5.4.11", "2.5.4.7", "2.5.4.8", "2.5.4.6", "1.2.840.113549.1.9.1", "1.2.840.113549.1.9.1", "0.9.2342.19200300.100.1.25", "0.9.2342.19200300.100.1.1", CN,
    ]);
  });
  it("refuses an unknown attribute, a component without =, an empty value or subject", () => {
    expect(code(() => parseDn("CN=a,XX=b"))).toBe("USAGE");
    expect(code(() => parseDn("CN=a,Acme"))).toBe("USAGE");
    expect(code(() => parseDn("CN="))).toBe("USAGE");
    expect(code(() => parseDn("   "))).toBe("USAGE");
    expect(code(() => parseDn("=x"))).toBe("USAGE");
  });
  it("country must be a two-letter upper-case code", () => {
    expect(parseDn("C=US")[0]!.value).toBe("US");
    for (const c of ["C=u", "C=fr", "C=F1"]) expect(code(() => parseDn(c)), c).toBe("USAGE");
    expect(code(() => parseDn("C=USA"))).toBe("BAD_INPUT"); // longer than ub-country-name
  });
  it("enforces RFC 5280 upper bounds and refuses control characters", () => {
    expect(parseDn("CN=" + "é".repeat(64))[0]!.value).toHaveLength(64);
    expect(code(() => parseDn("CN=" + "a".repeat(65)))).toBe("BAD_INPUT");
    expect(code(() => dnFromParts({ cn: "a\tb" }))).toBe("BAD_INPUT");
  });
  it("dnFromParts puts init's flags in OpenSSL's order", () => {
    expect(formatDn(dnFromParts({ cn: "Root", org: "Acme", country: "FR", ou: "IT", state: "IDF", locality: "Paris" }))).toBe("C=FR, ST=IDF, L=Paris, O=Acme, OU=IT, CN=Root");
  });
  it("encodes with the right string types and decodes back", () => {
    const rdns = parseDn("C=FR,O=Société,CN=web1,emailAddress=a@example.lan,DC=lan");
    const enc = encodeName(rdns);
    const back = decodeName(enc);
    expect(back.map((r) => [r.type, r.value])).toEqual(rdns.map((r) => [r.type, r.value]));
    expect(back.map((r) => r.tag)).toEqual([der.TAG.PrintableString, der.TAG.UTF8String, der.TAG.UTF8String, der.TAG.IA5String, der.TAG.IA5String]);
    expect(formatDn(back)).toBe("C=FR, O=Société, CN=web1, emailAddress=a@example.lan, DC=lan");
    expect(formatDn([{ type: CN, value: "Doe, John" }])).toBe("CN=Doe\\, John");
  });
});
