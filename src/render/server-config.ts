/**
 * nginx and Apache httpd configurations for mutual TLS with this CA, from
 * templates/nginx/ and templates/apache/. Pure: the caller reads the
 * templates and supplies the paths.
 */
import { fill, indent } from "./template.js";
import { PkiError } from "../core/errors.js";

export interface ServerConfigParams {
  caSubject: string;
  serverName: string;
  /** "443", "127.0.0.1:8443", "[::]:443" */
  listen: string;
  cert: string;
  key: string;
  bundle: string;
  crl: string;
  upstream: string;
  verify: "on" | "optional";
  /** CA certificates above a client certificate */
  depth: number;
  /** the allow-list map include (<dir>/nginx-allow.map) when the CA keeps one */
  allowMap?: string;
  /** nginx only: ask this OCSP responder (pki serve) about each client certificate */
  ocsp?: { responder: string; template: string; resolver?: string };
  /**
   * An issuing CA (two tiers): the root, trusted but not advertised to
   * clients, and the issuing CA's DN as nginx and Apache print the client's
   * issuer (RFC 2253), to refuse clients of a sibling issuing CA.
   */
  issuing?: { root: string; issuerDn: string; advertised: string };
}

/** The OCSP block (templates/nginx/ocsp.conf), indented for the server block; empty without --ocsp. */
export function renderNginxOcsp(p: ServerConfigParams): string {
  if (!p.ocsp) return "";
  let block = fill(p.ocsp.template, { responder: nginxValue(p.ocsp.responder) });
  if (p.ocsp.resolver) {
    block += `# nginx resolves the responder's host name at run time, with this resolver\nresolver ${p.ocsp.resolver} valid=300s;\nresolver_timeout 5s;\n`;
  }
  return "\n" + indent(block.endsWith("\n") ? block : block + "\n", "    ");
}

/** Drop a placeholder line ("{{name}}" alone on its line) when it has nothing to say. */
function withoutLine(template: string, name: string): string {
  return template.replace(new RegExp(`^\\{\\{${name}\\}\\}\\n`, "m"), "");
}

/**
 * nginx: only the issuing CA in ssl_client_certificate (the CA names sent to
 * clients, and trusted); the root in ssl_trusted_certificate (trusted, never
 * advertised). A client may send a sibling issuing CA along with its
 * certificate and OpenSSL would build a chain to the same root: the pin on
 * $ssl_client_i_dn refuses it (403) whatever else the CRLs say.
 */
export function nginxIssuerPin(issuerDn: string): string {
  // nginx expands "$name" inside strings and has no escape for it
  if (/[$\x00-\x1f]/.test(issuerDn)) throw new PkiError("BAD_INPUT", `the issuing CA's name ${JSON.stringify(issuerDn)} holds characters an nginx string cannot carry ('$', control characters): pin the issuer by hand`);
  return [
    "# two tiers: only clients of this issuing CA, not of a sibling below the same root",
    `if ($ssl_client_i_dn != "${issuerDn.replace(/(["\\])/g, "\\$1")}") {`,
    "    return 403;",
    "}",
    "",
  ].join("\n");
}

/**
 * The http-level maps of the allow-list: a serial counts only for a
 * certificate nginx verified (with `ssl_verify_client optional`, a client may
 * present an unverifiable certificate that carries an allowed serial).
 */
export function nginxAllowMap(mapFile: string): string {
  return [
    "# The per-client allow-list (`pki nginx-config --allow-list`): pki rewrites",
    "# the map file on every issue, sign-csr, renew and revoke; reload nginx after.",
    "# Room for large lists (10,000+ serials): these two are http-level settings.",
    "map_hash_max_size    262144;",
    "map_hash_bucket_size 128;",
    "map $ssl_client_serial $pki_serial_allowed {",
    "    default 0;",
    `    include ${nginxValue(mapFile)};`,
    "}",
    "map $ssl_client_verify $pki_allowed {",
    "    default 0;",
    "    SUCCESS $pki_serial_allowed;",
    "}",
    "",
  ].join("\n");
}

/** Apache: the snippet's Require also pins the client's issuer (SSL_CLIENT_I_DN, RFC 2253). */
export function apacheIssuerPin(snippet: string, issuerDn: string): string {
  const want = "Require expr %{SSL_CLIENT_VERIFY} == 'SUCCESS'";
  if (!snippet.includes(want)) throw new Error("templates/apache/client-auth.conf no longer holds the Require line the issuer pin extends");
  if (/[\x00-\x1f%]/.test(issuerDn)) throw new PkiError("BAD_INPUT", `the issuing CA's name ${JSON.stringify(issuerDn)} holds characters an Apache expression cannot carry: pin the issuer by hand`);
  const quoted = issuerDn.replace(/(['\\])/g, "\\$1");
  return snippet.replace(want, `Require expr %{SSL_CLIENT_VERIFY} == 'SUCCESS' && %{SSL_CLIENT_I_DN} == '${quoted}'`);
}

export const NGINX_ALLOW_CHECK = [
  "",
  "    # only the certificates listed in the allow-list map (valid, not revoked)",
  "    if ($pki_allowed = 0) {",
  "        return 403;",
  "    }",
  "",
].join("\n");

/** A value nginx reads as one token: quoted when it holds anything but safe characters. */
export function nginxValue(v: string): string {
  if (/^[A-Za-z0-9_./:@*+=-]+$/.test(v)) return v;
  return `"${v.replace(/(["\\])/g, "\\$1")}"`;
}

/** A path Apache reads as one argument. */
export function apacheValue(v: string): string {
  if (/^[A-Za-z0-9_./:@+=-]+$/.test(v)) return v;
  return `"${v.replace(/(["\\])/g, "\\$1")}"`;
}

export function renderNginxSnippet(snippet: string): string {
  return snippet.endsWith("\n") ? snippet : snippet + "\n";
}

export function renderNginx(server: string, snippet: string, p: ServerConfigParams): string {
  if (!p.issuing) server = withoutLine(server, "trusted");
  const auth = renderNginxSnippet(snippet) + (p.issuing ? nginxIssuerPin(p.issuing.issuerDn) : "");
  return fill(server, {
    trusted: p.issuing
      ? [
          "    # two tiers: the root is trusted here but not named to clients; the CRL",
          "    # file holds the issuing CA's CRL and the root's (nginx checks both)",
          `    ssl_trusted_certificate ${nginxValue(p.issuing.root)};`,
        ].join("\n")
      : "",
    caSubject: p.caSubject,
    upstream: p.upstream,
    listen: nginxValue(p.listen),
    serverName: nginxValue(p.serverName),
    cert: nginxValue(p.cert),
    key: nginxValue(p.key),
    bundle: nginxValue(p.bundle),
    crl: nginxValue(p.crl),
    verify: p.verify,
    depth: String(p.depth),
    ocsp: renderNginxOcsp(p),
    clientAuth: indent(auth, "        "),
    allowMap: p.allowMap ? nginxAllowMap(p.allowMap) : "",
    allowCheck: p.allowMap ? NGINX_ALLOW_CHECK : "",
  });
}

export function renderApache(vhost: string, snippet: string, p: ServerConfigParams): string {
  if (!p.issuing) vhost = withoutLine(vhost, "trusted");
  else snippet = apacheIssuerPin(snippet, p.issuing.issuerDn);
  const l = p.listen;
  const port = /^\d+$/.test(l) ? l : (/:(\d+)$/.exec(l)?.[1] ?? "443");
  const listen = /^\d+$/.test(l) ? `*:${l}` : l;
  return fill(vhost, {
    trusted: p.issuing
      ? [
          "    # two tiers: the bundle holds the issuing CA and the root (trusted); only",
          "    # the issuing CA is named to clients",
          `    SSLCADNRequestFile    ${apacheValue(p.issuing.advertised)}`,
        ].join("\n")
      : "",
    caSubject: p.caSubject,
    upstream: p.upstream.replace(/\/+$/, ""),
    port,
    listen,
    serverName: apacheValue(p.serverName),
    cert: apacheValue(p.cert),
    key: apacheValue(p.key),
    bundle: apacheValue(p.bundle),
    crl: apacheValue(p.crl),
    verify: p.verify === "on" ? "require" : "optional",
    depth: String(p.depth),
    clientAuth: indent(snippet.endsWith("\n") ? snippet : snippet + "\n", "    "),
  });
}
