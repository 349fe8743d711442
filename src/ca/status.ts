/**
 * `pki status`'s reading half: every date that expires, gathered from the
 * store (the CA certificate and parent.crt, crl.pem and parent-crl.pem, the
 * index with its meta); core/status.ts decides what is due.
 */
import { parseOnelineDn } from "../core/dn-format.js";
import { parseIndex } from "../core/index-format.js";
import { formatDn } from "../core/names.js";
import { crlMarginDays, statusOf, type StatusItem } from "../core/status.js";
import { RESPONDER_NAME } from "../serve/responder.js";
import { DOC, type CaStore } from "../store/store.js";
import { docWhere, openAuthority, readCertificatePem } from "./authority.js";
import { crlFromBytes } from "./revocation.js";

export async function gather(store: CaStore, now: Date): Promise<StatusItem[]> {
  const ca = await openAuthority(store);
  const items: StatusItem[] = [{ kind: "ca", name: "ca", serial: ca.cert.serial, subject: formatDn(ca.cert.subject), profile: null, status: ca.cert.notAfter.getTime() > now.getTime() ? "valid" : "expired", notAfter: ca.cert.notAfter }];
  if (ca.parentPem !== null) {
    const { cert } = readCertificatePem(ca.parentPem, "parent.crt");
    items.push({ kind: "ca", name: "parent", serial: cert.serial, subject: formatDn(cert.subject), profile: null, status: cert.notAfter.getTime() > now.getTime() ? "valid" : "expired", notAfter: cert.notAfter });
  }
  for (const [name, doc] of [["crl", DOC.crl], ["parent-crl", DOC.parentCrl]] as const) {
    const bytes = await store.read(doc);
    const cur = bytes === null ? null : crlFromBytes(ca, bytes, docWhere(store, doc));
    if (!cur) {
      // no CRL at all is as bad as an expired one: nginx with ssl_crl will not start
      // (in an issuing CA the parent's CRL too: nginx's crl-chain.pem needs both)
      if (name === "crl" || ca.parentPem !== null) items.push({ kind: "crl", name, serial: null, subject: null, profile: null, status: "expired", notAfter: new Date(0) });
      continue;
    }
    const next = cur.info.nextUpdate ?? new Date(0);
    items.push({
      kind: "crl",
      name,
      serial: null,
      crlNumber: cur.info.crlNumber === undefined ? undefined : Number(cur.info.crlNumber),
      subject: null,
      profile: null,
      status: next.getTime() > now.getTime() ? "valid" : "expired",
      notAfter: next,
      // the parent's CRL comes from the offline root by hand: the whole window applies
      ...(name === "crl" ? { marginDays: crlMarginDays(cur.info.thisUpdate, next) } : {}),
    });
  }
  const meta = await store.meta();
  for (const e of parseIndex((await store.indexText()).toString("utf8"))) {
    const m = meta.get(e.serial);
    items.push({
      kind: m?.name === RESPONDER_NAME ? "responder" : "certificate",
      name: m?.name ?? null,
      serial: e.serial,
      subject: formatDn(parseOnelineDn(e.subject)),
      profile: m?.profile ?? null,
      status: statusOf(e, now),
      notAfter: e.expires,
    });
  }
  return items;
}
