/**
 * A root and issuing CAs below it, for the two-tier tests. Passphrase files
 * are written with mode 0600.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { pki, tmpdir, type Run } from "../helpers.js";

export interface TwoTier {
  root: string;
  rootDir: string;
  issuing: string;
  rootPass: string;
  issuingPass: string;
  /** pki in the root directory */
  r: (a: string[]) => Run;
  /** pki in the issuing directory */
  i: (a: string[]) => Run;
}

/** A root (name constraints acme.lan, 10/8, @acme.lan) and one issuing CA below it. */
export function makeTwoTier(opts: { rootArgs?: string[]; issuingName?: string; issuingArgs?: string[]; base?: string; rootConstraints?: string | null } = {}): TwoTier {
  const root = opts.base ?? tmpdir("pki-2tier-");
  const rootPass = path.join(root, "root.pass");
  const issuingPass = path.join(root, "issuing.pass");
  if (!fs.existsSync(rootPass)) fs.writeFileSync(rootPass, "root key ceremony passphrase\n", { mode: 0o600 });
  if (!fs.existsSync(issuingPass)) fs.writeFileSync(issuingPass, "issuing CA passphrase\n", { mode: 0o600 });
  const rootDir = path.join(root, "root");
  const name = opts.issuingName ?? "issuing1";
  const issuing = path.join(root, name);
  if (!fs.existsSync(rootDir)) {
    const a = pki(["init", "-d", rootDir, "--cn", "Acme Root CA", "--org", "Acme", "--passphrase-file", rootPass, "--crl-days", "90", ...(opts.rootConstraints === null ? [] : ["--name-constraints", opts.rootConstraints ?? "dns:acme.lan,ip:10.0.0.0/8,ip:127.0.0.0/8,email:acme.lan"]), ...(opts.rootArgs ?? [])]);
    if (a.code !== 0) throw new Error(a.stderr);
  }
  const b = pki(["init", "-d", issuing, "--cn", `Acme Issuing CA ${name}`, "--org", "Acme", "--parent", rootDir, "--parent-passphrase-file", rootPass, "--passphrase-file", issuingPass, ...(opts.issuingArgs ?? [])]);
  if (b.code !== 0) throw new Error(b.stderr);
  return {
    root,
    rootDir,
    issuing,
    rootPass,
    issuingPass,
    r: (a) => pki(["-d", rootDir, "--passphrase-file", rootPass, ...a], { cwd: root }),
    i: (a) => pki(["-d", issuing, "--passphrase-file", issuingPass, ...a], { cwd: root }),
  };
}

