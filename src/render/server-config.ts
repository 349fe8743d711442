/**
 * nginx and Apache httpd configurations for mutual TLS with this CA, from
 * templates/nginx/ and templates/apache/. Pure: the caller reads the
 * templates and supplies the paths.
 */
import { fill, indent } from "./template.js";

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
  /** nginx only: ask this OCSP responder (pki serve) about each client certificate */
  ocsp?: { responder: string; template: string; resolver?: string };
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
  return fill(server, {
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
    clientAuth: indent(renderNginxSnippet(snippet), "        "),
  });
}

export function renderApache(vhost: string, snippet: string, p: ServerConfigParams): string {
  const l = p.listen;
  const port = /^\d+$/.test(l) ? l : (/:(\d+)$/.exec(l)?.[1] ?? "443");
  const listen = /^\d+$/.test(l) ? `*:${l}` : l;
  return fill(vhost, {
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
