/**
 * pki list (filters and one-value-a-line allow-lists) and pki completion.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { json, makeCa, openssl, pki } from "../helpers.js";

let ca: ReturnType<typeof makeCa>;
const serials: Record<string, string> = {};
beforeAll(() => {
  ca = makeCa();
  for (const [profile, name, extra] of [
    ["client", "alice", []],
    ["client", "bob", ["--days", "10"]],
    ["server", "web1", []],
    ["client", "zoe", ["--cn", 'Zoë, "x"+y <z>; #1 ']],
  ] as const) {
    const r = ca.run(["issue", profile, name, ...extra, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    serials[name] = json(r).serial;
  }
  expect(ca.run(["renew", "web1"]).code).toBe(0); // web1's first certificate: revoked (superseded)
});

describe("pki list", () => {
  const serialsOf = (args: string[]) => ca.run(["list", ...args, "--format", "serial"]).stdout.trim().split("\n").filter(Boolean).sort();

  it("--status, --profile and --expiring filter; --format serial prints one serial a line", () => {
    const all = serialsOf([]);
    expect(all).toHaveLength(5);
    expect(serialsOf(["--status", "revoked"])).toEqual([serials.web1]);
    expect(serialsOf(["--status", "valid"])).toHaveLength(4);
    expect(serialsOf(["--status", "expired"])).toEqual([]);
    expect(serialsOf(["--profile", "server"])).toHaveLength(2);
    expect(serialsOf(["--expiring", "30"])).toEqual([serials.bob]);
    expect(serialsOf(["--status", "valid", "--profile", "client", "--expiring", "30"])).toEqual([serials.bob]);
  });

  it("--format dn prints nginx's $ssl_client_s_dn spelling (OpenSSL RFC 2253), byte for byte", () => {
    const dns = ca.run(["list", "--status", "valid", "--profile", "client", "--format", "dn"]).stdout;
    const expected = ["alice", "bob", "zoe"].map((n) => openssl(["x509", "-in", path.join(ca.dir, "issued", `${n}.crt`), "-noout", "-subject", "-nameopt", "RFC2253"]).stdout.replace(/^subject=/, ""));
    expect(dns).toBe(expected.join(""));
    expect(dns).toContain("CN=Zo\\C3\\AB\\, \\\"x\\\"\\+y \\<z\\>\\; #1\\ \n");
  });

  it("the table has a header and one row per certificate; an E line of openssl ca -updatedb counts as expired", () => {
    const t = ca.run(["list"]).stdout.trim().split("\n");
    expect(t[0]).toMatch(/^SERIAL +STATUS +PROFILE +NAME +NOT AFTER +SUBJECT$/);
    expect(t).toHaveLength(6);
    const index = path.join(ca.dir, "index.txt");
    const before = fs.readFileSync(index, "utf8");
    fs.writeFileSync(index, before.replace(new RegExp(`^V(\\t[^\\t]*\\t\\t${serials.alice})`, "m"), "E$1"));
    try {
      expect(json(ca.run(["list", "--status", "expired", "--json"])).certificates.map((c: any) => c.serial)).toEqual([serials.alice]);
    } finally {
      fs.writeFileSync(index, before);
    }
  });
});

describe("pki completion", () => {
  it("bash: completes commands, options and option values from the command table", () => {
    const script = pki(["completion", "bash"]).stdout;
    const complete = (...words: string[]) => {
      const r = spawnSync("bash", ["-c", `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _pki; printf '%s\\n' "\${COMPREPLY[@]}"`]);
      return String(r.stdout).trim().split("\n");
    };
    expect(complete("pki", "re")).toEqual(["revoke", "renew"]);
    expect(complete("pki", "--dir", "x", "ver")).toEqual(["verify"]);
    expect(complete("pki", "issue", "")).toEqual(["client", "code-signing", "ocsp", "server", "ssl"]);
    expect(complete("pki", "list", "--status", "")).toEqual(["valid", "revoked", "expired", "all"]);
    expect(complete("pki", "export", "p12", "--p12-f")).toEqual(["--p12-format"]);
    expect(complete("pki", "verify", "x", "--purpose", "")).toEqual(["client", "server", "code-signing"]);
  });

  it("zsh: the script parses and names every command and option", () => {
    const script = pki(["completion", "zsh"]).stdout;
    expect(script.startsWith("#compdef pki\n")).toBe(true);
    for (const w of ["sign-csr", "nginx-config", "--p12-format", "--expiring", "--keep-old", "--passphrase-file"]) expect(script).toContain(w);
    const r = spawnSync("zsh", ["-n"], { input: script });
    expect(r.error, "zsh is needed for this test: apt-get install zsh (npm run setup installs it)").toBeUndefined();
    expect(r.status, String(r.stderr)).toBe(0);
  });
});
