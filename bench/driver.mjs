#!/usr/bin/env node
/**
 * The bench's stand-in for `pki crl` and `pki revoke` on a build that does not
 * have those commands yet: the same core calls a command makes (open the CA,
 * take the lock, build the CRL from the index bytes / revoke and re-sign), so
 * the numbers measure the shared machinery. bench/run.mjs uses the real
 * commands whenever the build has them.
 *
 *   node bench/driver.mjs crl <dir> <passfile>
 *   node bench/driver.mjs revoke <dir> <passfile> <serial>
 */
import * as fs from "node:fs";
const [what, dir, passFile, serial] = process.argv.slice(2);
const { openSigningAuthority } = await import("../dist/ca/authority.js");
const { CaDir } = await import("../dist/store/ca-dir.js");
const { withLock } = await import("../dist/store/lock.js");
const { buildCrl, crlWrites, revokeSerials } = await import("../dist/ca/revocation.js");
const { writeFilesAtomic } = await import("../dist/store/atomic.js");
const pass = fs.readFileSync(passFile, "utf8").split(/\r?\n/)[0];
const ca = await openSigningAuthority(new CaDir(dir), async () => pass);
if (what === "crl") {
  await withLock(dir, () => {
    const crl = buildCrl(ca, ca.store.readIndexBuffer(), ca.settings.crlDays, new Date());
    writeFilesAtomic(crlWrites(ca, crl, ca.store.crlPath, false));
  });
} else if (what === "revoke") {
  await revokeSerials(ca, [{ serial, reason: "keyCompromise" }], new Date());
} else {
  process.stderr.write("usage: driver.mjs crl|revoke <dir> <passfile> [serial]\n");
  process.exitCode = 2;
}
