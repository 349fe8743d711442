/**
 * What the end-to-end tests of the CA core share: reading certificates the
 * way openssl prints them, and the "refused, nothing changed" check.
 */
import * as path from "node:path";
import { expect } from "vitest";
import { FIXTURES, openssl, snapshot, type Run } from "../helpers.js";

export const CSR = (name: string) => path.join(FIXTURES, "csr", name);

export interface OsslExt {
  critical: boolean;
  value: string;
}

/** The X509v3 extensions of a certificate as `openssl x509 -text` prints them: name -> {critical, value}. */
export function opensslExtensions(certPath: string): Record<string, OsslExt> {
  const r = openssl(["x509", "-in", certPath, "-noout", "-text"]);
  expect(r.code, r.stderr).toBe(0);
  const lines = r.stdout.split("\n");
  const start = lines.findIndex((l) => l.trim() === "X509v3 extensions:");
  const out: Record<string, OsslExt> = {};
  if (start < 0) return out;
  const indent = (l: string) => l.length - l.trimStart().length;
  const extIndent = indent(lines[start + 1]!);
  let cur: string | undefined;
  for (let i = start + 1; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.trim() === "" || indent(l) < extIndent) break;
    if (indent(l) === extIndent) {
      const m = /^\s*(.*?):\s*(critical)?\s*$/.exec(l)!;
      cur = m[1]!;
      out[cur] = { critical: m[2] === "critical", value: "" };
    } else if (cur) {
      out[cur]!.value += (out[cur]!.value ? "\n" : "") + l.trim();
    }
  }
  return out;
}

export function opensslField(certPath: string, field: "-serial" | "-subject" | "-issuer" | "-enddate"): string {
  const r = openssl(["x509", "-in", certPath, "-noout", field, "-nameopt", "RFC2253"]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim().replace(/^[a-zA-Z]+=\s*/, "");
}

/** `openssl x509 -text` of a certificate, whole. */
export function opensslText(certPath: string): string {
  const r = openssl(["x509", "-in", certPath, "-noout", "-text"]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

export function verify(caFile: string, cert: string, purpose: "sslserver" | "sslclient" | "any", untrusted?: string): Run {
  return openssl(["verify", "-CAfile", caFile, "-purpose", purpose, ...(untrusted ? ["-untrusted", untrusted] : []), cert]);
}

/**
 * A refusal as the contract wants it: exit 1, exactly one stderr line that
 * starts "pki: error:", no stack trace, nothing on stdout, and the CA
 * directory byte-identical (audit.log aside).
 */
export function expectRefused(r: Run, before: Record<string, string>, dir: string, pattern?: RegExp): void {
  expect(r.code, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(1);
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^pki: error: \S/);
  expect(r.stderr).not.toMatch(/\n\s+at |Error:|TypeError|RangeError/);
  expect(r.stdout).toBe("");
  if (pattern) expect(lines[0]).toMatch(pattern);
  expect(snapshot(dir)).toEqual(before);
}
