/**
 * The per-client allow-list that scales (issue 11, item 3): 10,000 clients
 * issued with the bulk path, `ssl_client_certificate` the CA alone, and the
 * nginx `map` of serials that `pki nginx-config --allow-list` turns on and
 * every issue and revoke rewrites. A real nginx: an allowed client 200, a
 * valid but unlisted one 403, a revoked one refused, new clients after a
 * reload; the serial spelling checked against what nginx itself prints for
 * $ssl_client_serial. And the old way, the bundle listing every client:
 * `doctor` fails it, and nginx indeed cannot complete a handshake with it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { json, makeCa, openssl, PASSPHRASE, tmpdir } from "../helpers.js";
import { nginxSerial } from "../../src/core/allow-map.js";
import { curl, freePort, Nginx, requireTools, startUpstream } from "./nginx-lib.js";

requireTools();

const N = 10_000;

describe(`nginx allow-list map at ${N} clients`, () => {
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  const running: Nginx[] = [];
  beforeAll(async () => {
    upstream = await startUpstream();
  });
  afterAll(async () => {
    for (const n of running) n.stop();
    await upstream?.close();
  });

  it("allowed 200, unlisted 403, revoked refused, new clients after a reload; handshakes keep working", { timeout: 1_800_000 }, async () => {
    const ca = makeCa();
    const ok = (r: ReturnType<typeof ca.run>) => {
      expect(r.code, r.stderr).toBe(0);
      return r;
    };
    ok(ca.run(["issue", "server", "localhost", "--san", "dns:localhost,ip:127.0.0.1"]));
    const names = Array.from({ length: N }, (_, i) => `agent-${String(i).padStart(5, "0")}`);
    const list = path.join(ca.root, "agents.txt");
    fs.writeFileSync(list, names.join("\n") + "\n");
    const issued = json(ok(ca.run(["issue", "client", "--names-from", list, "--json"], { timeout: 900_000 }))).certificates as Array<{ name: string; serial: string; cert: string; key: string }>;
    expect(issued).toHaveLength(N);
    // a valid certificate of another profile (clientAuth too): not on a client-only list
    const outsider = json(ok(ca.run(["issue", "ssl", "outsider", "--json"])));

    const port = await freePort();
    const up = `http://127.0.0.1:${upstream.port}`;
    const cfg = ok(ca.run(["nginx-config", "--server-name", "localhost", "--listen", `127.0.0.1:${port}`, "--upstream", up, "--allow-list", "client", "--json"]));
    const site = json(cfg).config as string;
    const mapFile = path.join(ca.dir, "nginx-allow.map");
    expect(json(cfg).allowList).toBe(mapFile);
    expect(site).toContain(`include ${mapFile};`);
    expect(site).toMatch(/map \$ssl_client_serial \$pki_serial_allowed \{/);
    expect(site).toMatch(/if \(\$pki_allowed = 0\) \{\s+return 403;\s+\}/);
    expect(site).toContain(`ssl_client_certificate ${ca.dir}/ca-clients.crt;`);
    // the choice is remembered
    expect(JSON.parse(fs.readFileSync(path.join(ca.dir, "pki.json"), "utf8")).allowList).toEqual({ include: "client" });
    const lines = () => fs.readFileSync(mapFile, "utf8").split("\n").filter((l) => l && !l.startsWith("#"));
    expect(lines()).toHaveLength(N);
    expect(new Set(lines())).toEqual(new Set(issued.map((c) => `${c.serial} 1;`)));
    // the bundle is the CA alone: one small CA name per handshake
    expect(fs.readFileSync(path.join(ca.dir, "ca-clients.crt"), "utf8")).toBe(fs.readFileSync(path.join(ca.dir, "ca.crt"), "utf8"));

    // a second server in the same nginx echoes $ssl_client_serial: nginx's own spelling of serials
    const echo = await freePort();
    const d = ca.dir;
    const echoSite = `
server {
    listen 127.0.0.1:${echo} ssl;
    server_name localhost;
    ssl_certificate ${d}/issued/localhost.chain.crt;
    ssl_certificate_key ${d}/private/localhost.key;
    ssl_client_certificate ${d}/ca.crt;
    ssl_verify_client on;
    location / { return 200 "$ssl_client_serial"; }
}
`;
    const nginx = new Nginx(tmpdir("pki-nginx-allow-"), site + echoSite);
    const t = nginx.test();
    expect(t.code, t.out).toBe(0);
    nginx.start();
    running.push(nginx);
    const cacert = path.join(ca.dir, "ca.crt");

    // serial spelling: pki's serials, and odd ones made by openssl (high bit, small, leading zero octet)
    const caKey = path.join(ca.root, "ca-plain.key");
    expect(openssl(["pkey", "-in", path.join(ca.dir, "private", "ca.key"), "-passin", `pass:${PASSPHRASE}`, "-out", caKey]).code).toBe(0);
    const csrKey = path.join(ca.root, "odd.key");
    const csr = path.join(ca.root, "odd.csr");
    expect(openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", csrKey, "-subj", "/CN=odd", "-out", csr]).code).toBe(0);
    const ext = path.join(ca.root, "ext");
    fs.writeFileSync(ext, "extendedKeyUsage=clientAuth\n");
    for (const serial of ["0x8A01", "1", "0x0100", "0x00C3D4"]) {
      const crt = path.join(ca.root, `odd-${serial}.crt`);
      const r = openssl(["x509", "-req", "-in", csr, "-CA", cacert, "-CAkey", caKey, "-set_serial", serial, "-extfile", ext, "-days", "30", "-out", crt]);
      expect(r.code, r.stderr).toBe(0);
      const printed = (await curl(echo, { cert: crt, key: csrKey, cacert })).body;
      const fromOpenssl = openssl(["x509", "-in", crt, "-noout", "-serial"]).stdout.trim().replace(/^serial=/, "");
      expect(nginxSerial(fromOpenssl), serial).toBe(printed);
      expect(nginxSerial(serial.replace(/^0x/, "")), serial).toBe(printed);
    }
    for (const c of [issued[0]!, issued[N - 1]!]) {
      const printed = (await curl(echo, { cert: c.cert, key: c.key, cacert })).body;
      expect(lines()).toContain(`${printed} 1;`);
      expect(printed).toBe(c.serial);
    }

    // allowed: 200, its DN reaching the application; a spread of clients, all handshakes fine
    for (const i of [0, 1, 4999, 7777, N - 1]) {
      const c = issued[i]!;
      const r = await curl(port, { cert: c.cert, key: c.key, cacert });
      expect(r.status, `${c.name}: ${r.body}`).toBe(200);
      expect(JSON.parse(r.body)).toEqual({ dn: `CN=${c.name}`, auth: "SUCCESS" });
    }
    // valid certificate of this CA, not on the list: 403, nothing reaches the application
    const seen = upstream.seen.length;
    const unlisted = await curl(port, { cert: outsider.cert, key: outsider.key, cacert });
    expect(unlisted.status, unlisted.body).toBe(403);
    expect(upstream.seen.length).toBe(seen);

    // revoke one: the map drops it at once; after the reload the CRL and the map refuse it
    const victim = issued[42]!;
    ok(ca.run(["revoke", victim.name]));
    expect(lines()).toHaveLength(N - 1);
    expect(lines()).not.toContain(`${victim.serial} 1;`);
    // a new client: listed at once, let in from the next reload
    const fresh = json(ok(ca.run(["issue", "client", "newcomer", "--json"])));
    expect(lines()).toContain(`${fresh.serial} 1;`);
    const beforeReload = await curl(port, { cert: fresh.cert, key: fresh.key, cacert });
    expect(beforeReload.status, beforeReload.body).toBe(403);
    await nginx.reload();
    const revoked = await curl(port, { cert: victim.cert, key: victim.key, cacert });
    expect([400, 403], revoked.body).toContain(revoked.status);
    expect(revoked.status).not.toBe(200);
    const after = await curl(port, { cert: fresh.cert, key: fresh.key, cacert });
    expect(after.status, after.body).toBe(200);
    for (const i of [43, 9998]) {
      const c = issued[i]!;
      expect((await curl(port, { cert: c.cert, key: c.key, cacert })).status).toBe(200);
    }

    // doctor: the map is current; edited by hand it fails, and --repair rewrites it
    const doc = json(ca.run(["doctor", "--json"]));
    expect(doc.checks).toEqual(expect.arrayContaining([expect.objectContaining({ name: "allow-list", status: "ok" }), expect.objectContaining({ name: "bundle-size", status: "ok" })]));
    fs.appendFileSync(mapFile, "DEADBEEF 1;\n");
    const bad = ca.run(["doctor", "--json"]);
    expect(bad.code).toBe(1);
    expect(json(bad).checks).toEqual(expect.arrayContaining([expect.objectContaining({ name: "allow-list", status: "fail" })]));
    ok(ca.run(["doctor", "--repair"]));
    expect(lines()).not.toContain("DEADBEEF 1;");
    expect(lines()).toHaveLength(N);

    // the old way: every client in the bundle. doctor fails it (the CA-names list is over 65,535 bytes) ...
    ok(ca.run(["bundle", "--include-issued", "client"]));
    const big = ca.run(["doctor", "--json"]);
    expect(big.code).toBe(1);
    const sizeCheck = json(big).checks.find((c: { name: string }) => c.name === "bundle-size");
    expect(sizeCheck.status).toBe("fail");
    expect(sizeCheck.message).toMatch(/\d+-byte list of CA names \(10\d{3} certificates\)/);
    // ... and it is right: nginx cannot complete a handshake with that bundle
    // (loading 10,000 CA names makes the reload itself slow)
    await nginx.reload(600_000);
    const broken = await curl(port, { cert: issued[0]!.cert, key: issued[0]!.key, cacert });
    expect(broken.status, broken.body).toBe(0);
    nginx.stop();
    // back to the CA alone (a plain `pki bundle` keeps the remembered choice): doctor is satisfied again
    ok(ca.run(["bundle", "--no-include-issued"]));
    expect(json(ca.run(["doctor", "--json"])).checks.find((c: { name: string }) => c.name === "bundle-size").status).toBe("ok");
  });
});
