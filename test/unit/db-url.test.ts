/**
 * store/db-url.ts applySslMode: the sslmode pki applies, before the driver
 * sees the URL. Pure.
 */
import { describe, expect, it } from "vitest";
import { applySslMode, redactUrl, urlHasPassword } from "../../src/store/db-url.js";
import { PkiError } from "../../src/core/errors.js";

const refused = (url: string): PkiError => {
  try {
    applySslMode(url);
  } catch (e) {
    expect(e).toBeInstanceOf(PkiError);
    return e as PkiError;
  }
  throw new Error(`accepted: ${url}`);
};

describe("applySslMode", () => {
  it("leaves a URL without sslmode, with disable, verify-full or no-verify, and one that asks for the driver's libpq semantics as it is", () => {
    for (const u of ["postgres://pki@db/ca", "postgres://pki@db/ca?sslmode=disable", "postgres://pki@db/ca?sslmode=verify-full&sslrootcert=%2Fca.crt", "postgres://pki@db/ca?sslmode=no-verify", "postgres://pki@db/ca?uselibpqcompat=true&sslmode=require", "postgres://pki@/ca?host=%2Frun%2Fpostgresql"]) {
      expect(applySslMode(u)).toBe(u);
    }
  });

  it("connects require and verify-ca as verify-full (verified, as node-postgres does, without its warning), keeping every other parameter", () => {
    expect(applySslMode("postgres://pki@db/ca?sslmode=require")).toBe("postgres://pki@db/ca?sslmode=verify-full");
    expect(applySslMode("postgres://pki@db/ca?application_name=x&sslmode=verify-ca&sslrootcert=%2Fca.crt")).toBe("postgres://pki@db/ca?application_name=x&sslmode=verify-full&sslrootcert=%2Fca.crt");
  });

  it("refuses a mode that falls back to plain text, an unknown one, and two of them (usage, exit 2)", () => {
    for (const m of ["prefer", "allow"]) {
      const e = refused(`postgres://pki@db/ca?sslmode=${m}`);
      expect(e.exitCode).toBe(2);
      expect(e.message).toBe(`sslmode=${m} falls back to a plain connection without saying so, which pki does not do: use sslmode=verify-full (or require) for a verified TLS connection, or sslmode=disable for none`);
    }
    expect(refused("postgres://pki@db/ca?sslmode=bogus").message).toMatch(/^unknown sslmode "bogus" in the store URL: use sslmode=verify-full/);
    expect(refused("postgres://pki@db/ca?sslmode=disable&sslmode=require").message).toMatch(/gives sslmode 2 times/);
    // the password is never in the message
    expect(refused("postgres://pki:hunter2@db/ca?sslmode=disable&sslmode=require").message).not.toContain("hunter2");
  });

  it("refuses SSLMODE and USELIBPQCOMPAT in capitals (the driver would ignore them: a plain connection), bad percent-encoding, and reads a fragment as none of the value", () => {
    for (const u of ["postgres://pki@db/ca?SSLMODE=verify-full", "postgres://pki@db/ca?SslMode=disable", "postgres://pki@db/ca?USELIBPQCOMPAT=true&sslmode=prefer"]) {
      const e = refused(u);
      expect(e.exitCode).toBe(2);
      expect(e.message).toMatch(/^write (sslmode|uselibpqcompat) in lower case in the store URL/);
    }
    expect(refused("postgres://pki@db/ca?sslmode=%ZZ").message).toMatch(/not valid percent-encoding/);
    expect(applySslMode("postgres://pki@db/ca?sslmode=require#frag")).toBe("postgres://pki@db/ca?sslmode=verify-full#frag");
    // uselibpqcompat=false asks for nothing: prefer is refused as without it
    expect(refused("postgres://pki@db/ca?uselibpqcompat=false&sslmode=prefer").message).toMatch(/falls back to a plain connection/);
  });
});

describe("redactUrl and urlHasPassword on URLs that WHATWG URL refuses (a socket without a host)", () => {
  it("take the user information up to the last @ before the query, as the driver does: no part of the password is shown", () => {
    for (const [u, shown] of [
      ["postgres://u:hun@ter2@/ca?host=/tmp/x", "postgres://u@/ca?host=/tmp/x"],
      ["postgres://u:hun/ter2@/ca?host=/tmp/x", "postgres://u@/ca?host=/tmp/x"],
      ["postgres://u:p%40ss@/ca?host=/tmp/x&password=zz", "postgres://u@/ca?host=/tmp/x&password="],
    ] as const) {
      expect(redactUrl(u)).toBe(shown);
      expect(redactUrl(u)).not.toMatch(/hun|ter2|p%40ss|zz/);
      expect(urlHasPassword(u)).toBe(true);
    }
    expect(urlHasPassword("postgres://u@/ca?host=/tmp/x")).toBe(false);
    expect(redactUrl("postgres://u@/ca?host=/tmp/x")).toBe("postgres://u@/ca?host=/tmp/x");
  });
});
