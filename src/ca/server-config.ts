/**
 * The web server configuration for mutual TLS with this CA, for
 * `pki nginx-config` (templates/nginx/server.conf, with
 * templates/nginx/client-auth.conf inlined in `location /`; --snippet: only
 * the client-auth block, to include in a location of an existing server) and
 * `pki apache-config` (templates/apache/). The rendering is pure
 * (render/server-config.ts); this module checks the options, reads the CA,
 * the templates and resolv.conf, and turns on the allow-list when asked.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PkiError, usage } from "../core/errors.js";
import { rfc2253Dn } from "../core/dn-format.js";
import { parseIndex } from "../core/index-format.js";
import { formatDn } from "../core/names.js";
import { parseCertificate } from "../core/parse.js";
import { parsePemBlocks } from "../core/pem.js";
import { apacheIssuerPin, nginxIssuerPin, renderApache, renderNginx, renderNginxSnippet, type ServerConfigParams } from "../render/server-config.js";
import { TEMPLATES_DIR } from "../store/ca-dir.js";
import { DOC, type CaStore } from "../store/store.js";
import { docWhere, openAuthority, profileOf, type Authority } from "./open-ca.js";
import { hasParent } from "./parent.js";
import { enableAllowList, readAllowListSetting } from "./revocation.js";

export type ServerKind = "nginx" | "apache";

export interface ServerConfigOpts {
  serverName?: string;
  upstream?: string;
  listen?: string;
  cert?: string;
  key?: string;
  /** ssl_verify_client / SSLVerifyClient; default "on" (the command checks --verify against VERIFY_MODES) */
  verify?: "on" | "optional";
  snippet?: boolean;
  /** true (the CA's OCSP URL) or a URL */
  ocsp?: boolean | string;
  /** nginx only: turn on the allow-list map (true: every valid certificate; a string: that profile's) */
  allowList?: boolean | string;
}

/**
 * ssl_verify_depth / SSLVerifyDepth: the number of CA certificates above a
 * client certificate. 1 for a root CA; for an intermediate (an imported CA
 * whose ca.crt is not self-issued) one more per certificate up to the root.
 */
export async function verifyDepth(ca: Authority): Promise<number> {
  const blocks = parsePemBlocks((await ca.store.read(DOC.caCert))?.toString("utf8") ?? ca.certPem).filter((b) => b.label === "CERTIFICATE");
  const last = blocks.length ? parseCertificate(blocks[blocks.length - 1]!.der) : ca.cert;
  const selfIssued = Buffer.from(last.issuerRaw).equals(Buffer.from(last.subjectRaw));
  return Math.max(1, blocks.length) + (selfIssued ? 0 : 1);
}

/** The server pair: --cert/--key, else the issued name (or the valid certificate whose CN) equal to --server-name. */
async function serverPair(store: CaStore, serverName: string | undefined, o: ServerConfigOpts): Promise<{ cert: string; key: string }> {
  if (o.cert && o.key) return { cert: path.resolve(o.cert), key: path.resolve(o.key) };
  if (o.cert || o.key) throw usage("--cert and --key go together: pass both");
  if (!serverName) throw usage("pass --server-name NAME (a name of `pki issue server NAME`) or --cert FILE --key FILE");
  let name: string | undefined;
  if ((await store.read(DOC.issuedChain(serverName)).catch(() => null)) !== null) name = serverName;
  else {
    const meta = await store.meta();
    const cnSuffix = `/CN=${serverName}`;
    const hit = parseIndex((await store.indexText()).toString("utf8"))
      .filter((e) => e.status === "V" && e.subject.endsWith(cnSuffix) && meta.get(e.serial)?.name)
      .pop();
    name = hit ? meta.get(hit.serial)!.name : undefined;
  }
  if (!name) throw new PkiError("NOT_FOUND", `no issued server certificate named or with CN ${JSON.stringify(serverName)}: run \`pki issue server ${serverName}\`, or pass --cert FILE --key FILE`);
  return { cert: docWhere(store, DOC.issuedChain(name)), key: docWhere(store, DOC.issuedKey(name)) };
}

export function upstreamOption(v: string | undefined): string {
  const u = v ?? "http://127.0.0.1:8080";
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    throw usage(`--upstream takes a URL such as http://127.0.0.1:8080, not ${JSON.stringify(u)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw usage("--upstream: use an http:// or https:// URL");
  if (!/^[\x21-\x7e]+$/.test(u) || /[;"'{}\\]/.test(u)) throw usage("--upstream: the URL must be ASCII without spaces, quotes, braces or ';'");
  return u;
}

/**
 * --ocsp [URL]: the responder nginx asks (ssl_ocsp_responder). nginx speaks
 * plain HTTP to it only. A host name (not an IP literal) needs a `resolver`:
 * nginx resolves it at run time, not from /etc/hosts; we take the first
 * nameserver of /etc/resolv.conf.
 */
export function ocspOption(v: boolean | string | undefined, caOcspUrl: string | undefined): { responder: string; resolver?: string } | undefined {
  if (v === undefined || v === false) return undefined;
  const u = v === true ? caOcspUrl : v;
  if (u === undefined) throw usage("--ocsp needs the responder URL (pki serve), e.g. --ocsp http://127.0.0.1:8080/ocsp, or a CA created with `pki init --ocsp-url`");
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    throw usage(`--ocsp takes a URL such as http://127.0.0.1:8080/ocsp, not ${JSON.stringify(u)}`);
  }
  if (url.protocol !== "http:") throw usage("--ocsp: nginx asks OCSP responders over plain http:// only");
  if (!/^[\x21-\x7e]+$/.test(u) || /[;"'{}\\]/.test(u)) throw usage("--ocsp: the URL must be ASCII without spaces, quotes, braces or ';'");
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (/^\d+\.\d+\.\d+\.\d+$/.test(host) || host.includes(":")) return { responder: u };
  let ns = "127.0.0.53";
  try {
    const m = /^\s*nameserver\s+(\S+)/m.exec(fs.readFileSync("/etc/resolv.conf", "utf8"));
    if (m && /^[0-9A-Fa-f:.]+$/.test(m[1]!)) ns = m[1]!.includes(":") ? `[${m[1]}]` : m[1]!;
  } catch {
    // no resolv.conf: systemd-resolved's stub address
  }
  return { responder: u, resolver: ns };
}

function listenOption(v: string | undefined): string {
  const l = v ?? "443";
  if (!/^(\d{1,5}|[A-Za-z0-9.-]+:\d{1,5}|\[[0-9A-Fa-f:.]+\]:\d{1,5}|\*:\d{1,5})$/.test(l)) throw usage(`--listen takes PORT or ADDRESS:PORT (443, 127.0.0.1:8443, [::]:443), not ${JSON.stringify(l)}`);
  return l;
}

/** What the command prints: the configuration, its --json fields, and notes and warnings for stderr. */
export interface ServerConfig {
  config: string;
  data: Record<string, unknown>;
  messages: string[];
}

/**
 * The allow-list: turned on here when asked (remembered in pki.json, the map
 * written now and rewritten by every later change), or already on. Returns
 * what is in effect: false, true (every valid certificate) or a profile.
 */
async function allowList(ca: Authority, o: ServerConfigOpts, kind: ServerKind, now: Date, messages: string[]): Promise<false | true | string> {
  const current = kind === "nginx" ? readAllowListSetting(ca) : false;
  if (o.allowList === undefined || o.allowList === false) return current;
  if (kind !== "nginx") throw usage("--allow-list is for nginx-config");
  const include: true | string = o.allowList;
  if (typeof include === "string") await profileOf(ca.store, include); // PROFILE_INVALID before anything is written
  const count = await enableAllowList(ca, include, now);
  await ca.store.audit([{ command: "nginx-config", action: "allow-list", include, outcome: "ok" }]);
  messages.push(`pki: note: wrote ${docWhere(ca.store, DOC.allowMap)} (${count} index line(s) considered); pki keeps it current from now on (pki.json "allowList")`);
  return include;
}

const templateReader = (kind: ServerKind) => (f: string) => fs.readFileSync(path.join(TEMPLATES_DIR, kind, f), "utf8");

/** The configuration of `kind` for this CA (or, with --snippet, only the client-auth block). */
export async function serverConfig(store: CaStore, o: ServerConfigOpts, kind: ServerKind, now: Date): Promise<ServerConfig> {
  const verify = o.verify ?? "on";
  const upstream = upstreamOption(o.upstream);
  const listen = listenOption(o.listen);
  if (o.serverName !== undefined && !/^[A-Za-z0-9_*.-]+$/.test(o.serverName)) throw usage(`--server-name takes a host name, not ${JSON.stringify(o.serverName)}`);
  const ca = await openAuthority(store);
  if (o.ocsp !== undefined && kind !== "nginx") throw usage("--ocsp is for nginx-config");
  if (o.ocsp !== undefined && o.snippet) throw usage("--ocsp goes into the server block: leave out --snippet");
  const ocsp = ocspOption(o.ocsp, ca.settings.ocspUrl);
  const messages: string[] = [];
  const allow = await allowList(ca, o, kind, now, messages);
  const read = templateReader(kind);
  const rawSnippet = read("client-auth.conf");
  // an issuing CA (two tiers): the root trusted but not advertised, crl-chain.pem, depth 2, the issuer pinned
  const issuing = hasParent(ca)
    ? { root: path.resolve(docWhere(store, DOC.parentCert)), issuerDn: rfc2253Dn(ca.cert.subject), advertised: path.resolve(docWhere(store, DOC.caCert)) }
    : undefined;
  const snippet = issuing && kind === "apache" ? apacheIssuerPin(rawSnippet, issuing.issuerDn) : rawSnippet;
  if (o.snippet) return { config: kind === "nginx" ? renderNginxSnippet(snippet) + (issuing ? nginxIssuerPin(issuing.issuerDn) : "") : snippet, data: { config: snippet }, messages };

  const pair = await serverPair(store, o.serverName === "_" ? undefined : o.serverName, o);
  const params: ServerConfigParams = {
    caSubject: formatDn(ca.cert.subject),
    serverName: o.serverName ?? (kind === "nginx" ? "_" : "localhost"),
    listen,
    cert: pair.cert,
    key: pair.key,
    // Apache reads every trusted CA from SSLCACertificateFile (ca-chain.crt: issuing CA + root)
    // and names only SSLCADNRequestFile's to clients; nginx keeps the root apart (ssl_trusted_certificate)
    bundle: path.resolve(docWhere(store, issuing && kind === "apache" ? DOC.caChain : DOC.bundle)),
    crl: path.resolve(docWhere(store, issuing ? DOC.crlChain : DOC.crl)),
    upstream,
    verify,
    depth: issuing ? 2 : await verifyDepth(ca),
    ocsp: ocsp && { ...ocsp, template: read("ocsp.conf") },
    issuing,
    allowMap: allow !== false ? path.resolve(docWhere(store, DOC.allowMap)) : undefined,
  };
  const config = kind === "nginx" ? renderNginx(read("server.conf"), rawSnippet, params) : renderApache(read("vhost.conf"), rawSnippet, params);
  for (const f of [pair.cert, pair.key, params.bundle, params.crl, ...(issuing ? [issuing.root] : [])]) if (!fs.existsSync(f)) messages.push(`pki: warning: ${f} does not exist yet`);
  const data = { config, serverName: params.serverName, cert: pair.cert, key: pair.key, bundle: params.bundle, crl: params.crl, verifyDepth: params.depth, ocspResponder: ocsp?.responder ?? null, allowList: params.allowMap ?? null, ...(issuing ? { trusted: issuing.root, issuerDn: issuing.issuerDn } : {}) };
  return { config, data, messages };
}
