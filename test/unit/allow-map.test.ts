import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { allowedSerials, allowMapText, CA_NAMES_LIMIT, caNamesListSize, nginxSerial } from "../../src/core/allow-map.js";
import type { IndexEntry } from "../../src/core/index-format.js";
import { renderNginx, type ServerConfigParams } from "../../src/render/server-config.js";
import { ROOT } from "../helpers.js";

const NOW = new Date("2026-06-01T00:00:00Z");
const e = (serial: string, over: Partial<IndexEntry> = {}): IndexEntry => ({ status: "V", expires: new Date("2027-01-01T00:00:00Z"), serial, file: "unknown", subject: "/CN=x", ...over });

describe("nginx allow-list map", () => {
  it("spells serials as nginx's $ssl_client_serial (i2a_ASN1_INTEGER): upper case, no leading 00 octet, even length", () => {
    expect(nginxSerial("8a01")).toBe("8A01");
    expect(nginxSerial("008A01")).toBe("8A01");
    expect(nginxSerial("1")).toBe("01");
    expect(nginxSerial("0100")).toBe("0100");
    expect(nginxSerial("00")).toBe("00");
    expect(nginxSerial("4AC9C8775B497F8AD9984C94787B611890")).toBe("4AC9C8775B497F8AD9984C94787B611890");
  });
  it("lists valid, unexpired certificates (of the profile), one `SERIAL 1;` line each", () => {
    const idx = [e("01"), e("02", { status: "R", revokedAt: NOW }), e("03", { expires: new Date("2026-01-01T00:00:00Z") }), e("04"), e("05", { status: "E" })];
    const profiles: Record<string, string> = { "01": "client", "04": "ssl" };
    expect(allowedSerials(idx, { include: true, profileOf: (s) => profiles[s], now: NOW })).toEqual(["01", "04"]);
    expect(allowedSerials(idx, { include: "client", profileOf: (s) => profiles[s], now: NOW })).toEqual(["01"]);
    const text = allowMapText(idx, { include: "client", profileOf: (s) => profiles[s], now: NOW, caSubject: "CN=Acme\nCA" });
    expect(text.split("\n").filter((l) => l && !l.startsWith("#"))).toEqual(["01 1;"]);
    expect(text.split("\n").every((l) => l === "" || l.startsWith("#") || /^[0-9A-F]+ 1;$/.test(l))).toBe(true);
  });
  it("CA names list size: 2 + the DER subject length per certificate, limit 65,535", () => {
    expect(caNamesListSize([30, 40])).toBe(74);
    expect(CA_NAMES_LIMIT).toBe(65_535);
    // the 2,058 certificates of the issue with 30-byte subjects: over the limit
    expect(caNamesListSize(Array(2058).fill(30)) > CA_NAMES_LIMIT).toBe(true);
  });
  it("the rendered server block: maps at http level, 403 in the server, no session resumption", () => {
    const t = (f: string) => fs.readFileSync(path.join(ROOT, "templates", f), "utf8");
    const p: ServerConfigParams = { caSubject: "CN=Acme", serverName: "w", listen: "443", cert: "/c", key: "/k", bundle: "/b", crl: "/crl", upstream: "http://127.0.0.1:8080", verify: "on", depth: 1 };
    const plain = renderNginx(t("nginx/server.conf"), t("nginx/client-auth.conf"), p);
    expect(plain).not.toMatch(/pki_allowed|map /);
    expect(plain).toMatch(/^\s+ssl_session_tickets off;$/m);
    expect(plain).toMatch(/^\s+ssl_session_cache\s+off;$/m);
    const out = renderNginx(t("nginx/server.conf"), t("nginx/client-auth.conf"), { ...p, allowMap: "/etc/pki ca/nginx-allow.map" });
    const mapAt = out.indexOf("map $ssl_client_serial $pki_serial_allowed {");
    expect(mapAt).toBeGreaterThan(0);
    expect(mapAt).toBeLessThan(out.indexOf("server {"));
    expect(out).toContain('include "/etc/pki ca/nginx-allow.map";');
    expect(out).toMatch(/map \$ssl_client_verify \$pki_allowed \{\s+default 0;\s+SUCCESS \$pki_serial_allowed;\s+\}/);
    expect(out.indexOf("if ($pki_allowed = 0)")).toBeGreaterThan(out.indexOf("server {"));
  });
});
