/**
 * store/db-url.ts applySslMode: the sslmode pki applies, before the driver
 * sees the URL. Pure.
 */
import { describe, expect, it } from "vitest";
import { applySslMode } from "../../src/store/db-url.js";
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
});
