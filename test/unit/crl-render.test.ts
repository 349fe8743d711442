/**
 * Pure pieces: reading a CRL's header back (core/crl.ts readCrlInfo) and
 * rendering the nginx / Apache configurations (src/render).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { encodeRevoked, readCrlInfo, revokedFromIndexText, revokedSerials, tbsCertList } from "../../src/core/crl.js";
import * as der from "../../src/core/der.js";
import { fill } from "../../src/render/template.js";
import { nginxValue, renderApache, renderNginx, type ServerConfigParams } from "../../src/render/server-config.js";
import { ROOT } from "../helpers.js";

const ALG = der.seq(der.oid("1.2.840.10045.4.3.2"));

function fakeCrl(indexText: string, crlNumber: bigint): Uint8Array {
  const tbs = tbsCertList({
    signatureAlgorithm: ALG,
    issuer: der.seq(der.set(der.seq(der.oid("2.5.4.3"), der.tlv(0x0c, der.utf8("T"))))),
    thisUpdate: new Date("2030-01-01T00:00:00Z"),
    nextUpdate: new Date("2030-01-08T00:00:00Z"),
    crlNumber,
    authorityKeyId: new Uint8Array(20).fill(7),
    revoked: revokedFromIndexText(indexText),
  });
  return der.seq(tbs, ALG, der.bitString(Uint8Array.of(1, 2, 3)));
}

describe("readCrlInfo", () => {
  const index = "R\t310101000000Z\t300101000000Z,keyCompromise\t0A\tunknown\t/CN=a\nV\t310101000000Z\t\t0B\tunknown\t/CN=b\nR\t310101000000Z\t300102000000Z\tFF01\tunknown\t/CN=c\n";
  it("reads times, number, entry count and serials", () => {
    const info = readCrlInfo(fakeCrl(index, 0x1234n));
    expect(info.thisUpdate.toISOString()).toBe("2030-01-01T00:00:00.000Z");
    expect(info.nextUpdate?.toISOString()).toBe("2030-01-08T00:00:00.000Z");
    expect(info.crlNumber).toBe(0x1234n);
    expect(info.revoked).toBe(2);
    expect(revokedSerials(info.revokedDer)).toEqual(["0A", "FF01"]);
    expect(Buffer.from(info.revokedDer).equals(Buffer.from(encodeRevoked(revokedFromIndexText(index))))).toBe(true);
  });
  it("reads an empty CRL (no revokedCertificates field)", () => {
    const info = readCrlInfo(fakeCrl("", 1n));
    expect(info.revoked).toBe(0);
    expect(info.crlNumber).toBe(1n);
    expect(revokedSerials(info.revokedDer)).toEqual([]);
  });
  it("rejects what is not a CRL", () => {
    expect(() => readCrlInfo(Uint8Array.of(0x30, 0x00))).toThrow();
  });
});

describe("server configuration rendering", () => {
  const p: ServerConfigParams = {
    caSubject: "CN=Acme CA",
    serverName: "web1.example.lan",
    listen: "443",
    cert: "/etc/pki/issued/web1.chain.crt",
    key: "/etc/pki/private/web1.key",
    bundle: "/etc/pki/ca-clients.crt",
    crl: "/etc/pki/my crl.pem",
    upstream: "http://127.0.0.1:8080",
    verify: "optional",
    depth: 2,
  };
  const t = (f: string) => fs.readFileSync(path.join(ROOT, "templates", f), "utf8");

  it("nginx: CRL, bundle, depth, verify, and the headers cleared at server level then set from the TLS layer", () => {
    const out = renderNginx(t("nginx/server.conf"), t("nginx/client-auth.conf"), p);
    expect(out).toContain('ssl_crl                "/etc/pki/my crl.pem";');
    expect(out).toContain("ssl_client_certificate /etc/pki/ca-clients.crt;");
    expect(out).toMatch(/ssl_verify_client\s+optional;/);
    expect(out).toMatch(/ssl_verify_depth\s+2;/);
    const clear = out.indexOf('proxy_set_header X-Ssl-Client-DN     "";');
    const set = out.indexOf("proxy_set_header X-Ssl-Client-DN     $ssl_client_s_dn;");
    expect(clear).toBeGreaterThan(0);
    expect(set).toBeGreaterThan(clear);
    expect(out).toContain("proxy_set_header X-Ssl-Authenticated $ssl_client_verify;");
    expect(out).toMatch(/if \(\$ssl_client_verify != SUCCESS\) \{\s+return 401;\s+\}/);
    expect(out).not.toMatch(/\{\{/);
  });

  it("Apache: the mod_ssl directives, and the DN header unset before it is set", () => {
    const out = renderApache(t("apache/vhost.conf"), t("apache/client-auth.conf"), { ...p, verify: "on" });
    for (const d of ["SSLCACertificateFile  /etc/pki/ca-clients.crt", 'SSLCARevocationFile   "/etc/pki/my crl.pem"', "SSLCARevocationCheck  chain", "SSLVerifyClient       require", "SSLVerifyDepth        2", "SSLOptions +StdEnvVars +ExportCertData", "<VirtualHost *:443>"]) {
      expect(out).toContain(d);
    }
    expect(out.indexOf("RequestHeader unset X-Ssl-Client-DN early")).toBeLessThan(out.indexOf('RequestHeader set X-Ssl-Client-DN "%{SSL_CLIENT_S_DN}s"'));
    expect(out).not.toMatch(/\{\{/);
  });

  it("quotes what nginx would split, and refuses a template placeholder without a value", () => {
    expect(nginxValue('/a b/"x')).toBe('"/a b/\\"x"');
    expect(nginxValue("127.0.0.1:8443")).toBe("127.0.0.1:8443");
    expect(() => fill("{{nope}}", {})).toThrow(/nope/);
  });
});
