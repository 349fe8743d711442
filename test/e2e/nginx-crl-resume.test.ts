/**
 * CRL mode without back doors (issue 11, items 3 and 4), proven with a real
 * nginx: agents signed from their own CSRs under names (`sign-csr --name`),
 * served through exactly what `pki nginx-config` prints. `pki revoke agent1`
 * + `nginx -s reload` refuses agent1 while the others pass, and a TLS
 * session agent1 saved before (TLS 1.2 and 1.3, `openssl s_client
 * -sess_out`) cannot be resumed afterwards.
 *
 * The nginx.conf around it holds what load-balanced setups commonly have at
 * http level: a shared session cache with a long timeout and a ticket key
 * file that outlives reloads. The sessions are saved while the server runs
 * the block pki printed before (no session settings of its own); the
 * revocation comes with an upgrade to what pki prints now and one reload.
 * A second server keeps the old block: the control, where the revoked agent
 * does resume its session after the reload and gets 200, the back door the
 * generated configuration closes.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { json, makeCa, openssl, tmpdir } from "../helpers.js";
import { curl, freePort, Nginx, requireTools, sClient, startUpstream } from "./nginx-lib.js";

requireTools();

describe("CRL mode: revoke + reload locks a machine out, resumption included", () => {
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let nginx: Nginx | undefined;
  beforeAll(async () => {
    upstream = await startUpstream();
  });
  afterAll(async () => {
    nginx?.stop();
    await upstream?.close();
  });

  it("agent 200; revoked agent refused after the reload, others pass; its saved TLS 1.2 and 1.3 sessions are not resumed", { timeout: 600_000 }, async () => {
    const ca = makeCa();
    const ok = (r: ReturnType<typeof ca.run>) => {
      expect(r.code, r.stderr).toBe(0);
      return r;
    };
    ok(ca.run(["issue", "server", "localhost", "--san", "dns:localhost,ip:127.0.0.1"]));
    // agents make their own keys and CSRs; the registration names them
    const agent = (n: string) => {
      const key = path.join(ca.root, `${n}.key`);
      const csr = path.join(ca.root, `${n}.csr`);
      expect(openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-subj", `/O=Acme/CN=${n}.agents.example.lan`, "-out", csr]).code).toBe(0);
      const d = json(ok(ca.run(["sign-csr", csr, "--profile", "client", "--name", n, "--json"])));
      return { cert: d.cert as string, key, serial: d.serial as string };
    };
    const a1 = agent("agent1");
    const a2 = agent("agent2");
    const cacert = path.join(ca.dir, "ca.crt");

    const port = await freePort();
    const control = await freePort();
    const up = `http://127.0.0.1:${upstream.port}`;
    const generated = (p: number) => ok(ca.run(["nginx-config", "--server-name", "localhost", "--listen", `127.0.0.1:${p}`, "--upstream", up])).stdout;
    const now = generated(port);
    expect(now).toMatch(/^\s*ssl_session_tickets off;$/m);
    expect(now).toMatch(/^\s*ssl_session_cache\s+off;$/m);
    // what pki printed before this change: the same block without its session settings
    const old = (p: number) => generated(p).replace(/^\s*ssl_session_(tickets|cache)\s.*\n/gm, "");
    expect(old(port)).not.toMatch(/^\s*ssl_session_(tickets|cache)\s/m);

    const prefix = tmpdir("pki-nginx-resume-");
    const ticketKey = path.join(prefix, "ticket.key");
    fs.writeFileSync(ticketKey, crypto.randomBytes(80), { mode: 0o600 });
    const httpLevel = `    ssl_session_cache shared:SSL:10m;\n    ssl_session_timeout 1h;\n    ssl_session_ticket_key ${ticketKey};\n`;
    // phase 1: both servers as an admin had them before; agent1 saves its sessions on both
    nginx = new Nginx(prefix, old(port) + old(control), httpLevel);
    const t = nginx.test();
    expect(t.code, t.out).toBe(0);
    nginx.start();

    for (const p of [port, control]) {
      for (const a of [a1, a2]) {
        const r = await curl(p, { cert: a.cert, key: a.key, cacert });
        expect(r.status, `port ${p}: ${r.body}`).toBe(200);
      }
    }
    const sess = (p: number, v: string) => path.join(prefix, `agent1-${p}-${v}.pem`);
    for (const p of [port, control]) {
      for (const tls of ["1.2", "1.3"] as const) {
        const h = await sClient(p, { ...a1, cacert, tls, sessOut: sess(p, tls) });
        expect(h.session, h.out).toBe("New");
        expect(h.status, h.out).toBe(200);
        expect(fs.existsSync(sess(p, tls)), h.out).toBe(true);
        // the saved session is good: it resumes
        const again = await sClient(p, { ...a1, cacert, tls, sessIn: sess(p, tls) });
        expect(again.session, again.out).toBe("Reused");
      }
    }

    // phase 2: lock agent1 out (revoke by name, the CRL is re-signed); the
    // first server now runs what pki prints, the control keeps the old block;
    // one reload
    const rv = ok(ca.run(["revoke", "agent1", "--reason", "keyCompromise", "--json"]));
    expect(json(rv).revoked).toEqual([expect.objectContaining({ serial: a1.serial, name: "agent1" })]);
    expect(openssl(["crl", "-in", path.join(ca.dir, "crl.pem"), "-noout", "-text"]).stdout).toContain(a1.serial);
    nginx.setSite(generated(port) + old(control));
    expect(nginx.test().code).toBe(0);
    await nginx.reload();

    const refused = await curl(port, { cert: a1.cert, key: a1.key, cacert });
    expect(refused.status, refused.body).toBe(400);
    const other = await curl(port, { cert: a2.cert, key: a2.key, cacert });
    expect(other.status, other.body).toBe(200);
    expect(JSON.parse(other.body)).toEqual({ dn: "CN=agent2.agents.example.lan,O=Acme", auth: "SUCCESS" });

    for (const tls of ["1.2", "1.3"] as const) {
      // pki's server: the saved session is not resumed; the full handshake meets the new CRL
      const h = await sClient(port, { ...a1, cacert, tls, sessIn: sess(port, tls) });
      expect(h.session, h.out).toBe("New");
      expect(h.status, h.out).toBe(400);
      // the control: with the same http-level settings the revoked agent resumes and gets in
      const c = await sClient(control, { ...a1, cacert, tls, sessIn: sess(control, tls) });
      expect(c.session, c.out).toBe("Reused");
      expect(c.status, c.out).toBe(200);
    }
    // and pki's server hands out nothing resumable any more (no session id, no ticket)
    for (const tls of ["1.2", "1.3"] as const) {
      const fresh = path.join(prefix, `agent2-${tls}.pem`);
      const h = await sClient(port, { ...a2, cacert, tls, sessOut: fresh });
      expect(h.status, h.out).toBe(200);
      if (fs.existsSync(fresh)) expect((await sClient(port, { ...a2, cacert, tls, sessIn: fresh })).session).toBe("New");
    }
    nginx.stop();
  });
});
