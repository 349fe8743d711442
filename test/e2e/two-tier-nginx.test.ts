/**
 * Two tiers behind a real nginx (Debian nginx-light, started here on a
 * loopback port, stopped by pid), configured with exactly what
 * `pki nginx-config` prints in an issuing CA: the issuing CA advertised, the
 * root trusted, crl-chain.pem, depth 2, the issuer pinned.
 *
 *  - a client of the issuing CA: 200;
 *  - a client of a sibling issuing CA below the same root, sending its chain: refused;
 *    and still refused (403, the pin) when the admin also loads the sibling's CRL;
 *  - a revoked leaf: refused after the CRL write and a reload;
 *  - the root revokes the issuing CA, its CRL is imported, reload: every client refused.
 */
import { execFile, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { json, pki, tmpdir } from "../helpers.js";
import { freePort, Nginx } from "./nginx-lib.js";
import { makeTwoTier, type TwoTier } from "./two-tier-lib.js";

function curl(port: number, cacert: string, cert?: string, key?: string): Promise<{ status: number; body: string }> {
  const args = ["-sS", "--max-time", "20", "--resolve", `localhost:${port}:127.0.0.1`, "--cacert", cacert, "-w", "\n%{http_code}"];
  if (cert) args.push("--cert", cert, "--key", key!);
  args.push(`https://localhost:${port}/`);
  return new Promise((resolve) => {
    execFile("curl", args, { encoding: "utf8" }, (err, stdout, stderr) => {
      const i = stdout.lastIndexOf("\n");
      const status = Number(stdout.slice(i + 1));
      if (err && !status) resolve({ status: 0, body: `curl failed: ${stderr}` });
      else resolve({ status, body: stdout.slice(0, i) });
    });
  });
}

describe("two tiers behind a real nginx, configured by `pki nginx-config`", () => {
  let upstream: http.Server;
  let upPort = 0;
  const seen: string[] = [];
  let nginx: Nginx | undefined;
  let t: TwoTier;
  let sibling: TwoTier;

  beforeAll(async () => {
    for (const [cmd, pkg] of [["nginx", "nginx-light"], ["curl", "curl"]] as const) {
      if (spawnSync("sh", ["-c", `command -v ${cmd}`]).status !== 0) throw new Error(`${cmd} is missing: install the Debian package ${pkg} (bash .ci/run does)`);
    }
    upstream = http.createServer((req, res) => {
      seen.push(String(req.headers["x-ssl-client-dn"]));
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(`hello ${req.headers["x-ssl-client-dn"]}`);
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    upPort = (upstream.address() as net.AddressInfo).port;
    // no name constraints here: the server is "localhost"
    t = makeTwoTier({ rootConstraints: null, issuingName: "issuing1" });
    sibling = makeTwoTier({ base: t.root, rootConstraints: null, issuingName: "issuing2" });
    const ok = (r: ReturnType<typeof pki>) => {
      expect(r.code, r.stderr).toBe(0);
      return r;
    };
    ok(t.i(["issue", "server", "localhost", "--san", "dns:localhost,ip:127.0.0.1"]));
    for (const n of ["alice", "bob"]) ok(t.i(["issue", "client", n]));
    ok(sibling.i(["issue", "client", "mallory"]));
  });
  afterAll(async () => {
    nginx?.stop();
    await new Promise<void>((r) => upstream?.close(() => r()));
  });

  it("issuing-CA clients get in; a sibling's client does not (CRL and issuer pin); a revoked leaf and then the whole revoked issuing CA are refused", async () => {
    const port = await freePort();
    const r = t.i(["nginx-config", "--server-name", "localhost", "--listen", `127.0.0.1:${port}`, "--upstream", `http://127.0.0.1:${upPort}`, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const d = json(r);
    const site: string = d.config;
    expect(site).toContain(`ssl_client_certificate ${t.issuing}/ca-clients.crt;`);
    expect(site).toContain(`ssl_trusted_certificate ${t.issuing}/parent.crt;`);
    expect(site).toContain(`ssl_crl                ${t.issuing}/crl-chain.pem;`);
    expect(site).toMatch(/ssl_verify_depth\s+2;/);
    expect(site).toContain(`if ($ssl_client_i_dn != "CN=Acme Issuing CA issuing1,O=Acme") {`);
    // only the issuing CA is advertised: the bundle does not hold the root
    expect(fs.readFileSync(path.join(t.issuing, "ca-clients.crt"), "utf8")).not.toContain(fs.readFileSync(path.join(t.rootDir, "ca.crt"), "utf8"));
    nginx = new Nginx(tmpdir("pki-2tier-nginx-"), site);
    const test = nginx.test();
    expect(test.code, test.out).toBe(0);
    nginx.start();
    const rootCrt = path.join(t.rootDir, "ca.crt");
    const client = (dir: string, n: string, chain = false) => [path.join(dir, "issued", `${n}.${chain ? "chain.crt" : "crt"}`), path.join(dir, "private", `${n}.key`)] as const;

    // the issuing CA advertised to clients: openssl s_client lists exactly it as an acceptable CA
    const sc = spawnSync("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, "-servername", "localhost", "-CAfile", rootCrt], { input: "", encoding: "utf8", timeout: 20_000 });
    const names = /Acceptable client certificate CA names\n([\s\S]*?)\n(?:Requested|Client Certificate Types|Peer signing|Shared)/.exec(sc.stdout)?.[1] ?? "";
    expect(names.trim()).toBe("O = Acme, CN = Acme Issuing CA issuing1");

    // clients of the issuing CA: 200, the DN reaches the upstream
    for (const n of ["alice", "bob"]) {
      const a = await curl(port, rootCrt, ...client(t.issuing, n));
      expect(a.status, a.body + nginx.errorLog().slice(-1500)).toBe(200);
      expect(a.body).toBe(`hello CN=${n}`);
    }
    // with its chain too
    expect((await curl(port, rootCrt, ...client(t.issuing, "alice", true))).status).toBe(200);
    // no certificate: 400
    expect((await curl(port, rootCrt)).status).toBe(400);

    // a client of the sibling issuing CA, sending its chain (mallory + issuing2) up to the shared root: refused
    const m = await curl(port, rootCrt, ...client(sibling.issuing, "mallory", true));
    expect(m.status, m.body).not.toBe(200);
    expect([400, 403]).toContain(m.status);
    expect(seen).not.toContain("CN=mallory");

    // the admin also loads the sibling's CRL (one nginx for both, say): the CRL check passes, the pin still refuses (403)
    const both = path.join(t.root, "both-crls.pem");
    fs.writeFileSync(both, fs.readFileSync(path.join(t.issuing, "crl-chain.pem"), "utf8") + fs.readFileSync(path.join(sibling.issuing, "crl.pem"), "utf8"));
    const port2 = await freePort();
    const nginx2 = new Nginx(tmpdir("pki-2tier-nginx-both-"), site.replace(`${t.issuing}/crl-chain.pem`, both).replace(`127.0.0.1:${port}`, `127.0.0.1:${port2}`));
    nginx2.start();
    try {
      const m2 = await curl(port2, rootCrt, ...client(sibling.issuing, "mallory", true));
      expect(m2.status, m2.body).toBe(403);
      expect((await curl(port2, rootCrt, ...client(t.issuing, "bob"))).status).toBe(200);
      // without the pin nginx would have let mallory through: the pin is what refuses it
      const unpinned = new Nginx(tmpdir("pki-2tier-nginx-nopin-"), fs.readFileSync(path.join(nginx2.prefix, "site.conf"), "utf8").replace(/if \(\$ssl_client_i_dn[^}]*\}/, ""));
      const conf = fs.readFileSync(path.join(unpinned.prefix, "site.conf"), "utf8");
      const port3 = await freePort();
      fs.writeFileSync(path.join(unpinned.prefix, "site.conf"), conf.replace(`127.0.0.1:${port2}`, `127.0.0.1:${port3}`));
      unpinned.start();
      try {
        expect((await curl(port3, rootCrt, ...client(sibling.issuing, "mallory", true))).status).toBe(200);
      } finally {
        unpinned.stop();
      }
    } finally {
      nginx2.stop();
    }

    // revoke alice in the issuing CA: crl-chain.pem is rewritten; after a reload alice is refused, bob not
    expect(t.i(["revoke", "alice"]).code).toBe(0);
    await nginx.reload();
    expect((await curl(port, rootCrt, ...client(t.issuing, "alice"))).status).toBe(400);
    expect((await curl(port, rootCrt, ...client(t.issuing, "bob"))).status).toBe(200);

    // the root revokes the issuing CA; its fresh CRL is carried over and imported; reload: every client refused
    expect(t.r(["revoke", "issuing1", "--reason", "keyCompromise"]).code).toBe(0);
    const imp = t.i(["crl", "--import-parent", path.join(t.rootDir, "crl.pem")]);
    expect(imp.code, imp.stderr).toBe(0);
    expect(imp.stderr).toMatch(/REVOKED this CA/);
    await nginx.reload();
    for (const n of ["alice", "bob"]) expect((await curl(port, rootCrt, ...client(t.issuing, n))).status, n).toBe(400);
    expect(nginx.errorLog()).toMatch(/certificate revoked/);
    nginx.stop();
  });
});
