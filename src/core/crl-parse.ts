/**
 * Reading a CRL (RFC 5280 5.1) with our DER reader: for `pki show` and for
 * `pki verify`'s revocation check. Pure: the signature is checked by the
 * caller (src/crypto/keys.ts verifySignature over `tbs`).
 */
import * as der from "./der.js";
import { OID } from "./certificate.js";
import { reasonFromCode, type Reason } from "./index-format.js";
import { decodeName, type Rdn } from "./names.js";
import { serialHex } from "./serial.js";

export interface ParsedCrlEntry {
  serial: string;
  revokedAt: Date;
  /** absent: no reasonCode (unspecified) */
  reason?: Reason;
}

export interface ParsedCrl {
  der: der.Bytes;
  tbs: der.Bytes;
  signatureAlgorithm: string;
  signature: der.Bytes;
  issuerRaw: der.Bytes;
  issuer: Rdn[];
  thisUpdate: Date;
  nextUpdate?: Date;
  crlNumber?: bigint;
  authorityKeyId?: string;
  revoked: ParsedCrlEntry[];
}

const isTime = (n: der.Node | undefined): n is der.Node => n !== undefined && (n.tag === der.TAG.UTCTime || n.tag === der.TAG.GeneralizedTime);

function intValue(b: der.Bytes): bigint {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

export function parseCrl(buf: der.Bytes): ParsedCrl {
  const top = der.read(buf);
  if (top.tag !== der.TAG.SEQUENCE || top.end !== buf.length) throw new der.DerError("not a DER CRL");
  const [tbsN, algN, sigN] = der.children(buf, top);
  if (!tbsN || !algN || !sigN || tbsN.tag !== der.TAG.SEQUENCE || sigN.tag !== der.TAG.BIT_STRING) throw new der.DerError("not a CRL");
  const t = der.children(buf, tbsN);
  let i = 0;
  if (t[i]?.tag === der.TAG.INTEGER) i++; // version v2
  const issuerN = t[i + 1];
  const thisN = t[i + 2];
  if (!issuerN || issuerN.tag !== der.TAG.SEQUENCE || !isTime(thisN)) throw new der.DerError("not a CRL");
  let j = i + 3;
  let nextUpdate: Date | undefined;
  if (isTime(t[j])) nextUpdate = der.readTime(buf, t[j++]!);
  const revoked: ParsedCrlEntry[] = [];
  if (t[j]?.tag === der.TAG.SEQUENCE) {
    for (const e of der.children(buf, t[j++]!)) {
      const [sN, dN, extN] = der.children(buf, e);
      if (!sN || sN.tag !== der.TAG.INTEGER || !isTime(dN)) throw new der.DerError("bad CRL entry");
      let sb = der.content(buf, sN);
      if (sb.length > 1 && sb[0] === 0) sb = sb.subarray(1);
      const entry: ParsedCrlEntry = { serial: serialHex(sb), revokedAt: der.readTime(buf, dN) };
      if (extN) {
        for (const x of der.children(buf, extN)) {
          const parts = der.children(buf, x);
          if (parts[0] && der.readOid(buf, parts[0]) === OID.reasonCode) {
            const v = parts[parts.length - 1]!;
            const inner = der.content(buf, v);
            const en = der.read(inner);
            const r = reasonFromCode(Number(intValue(der.content(inner, en))));
            if (r && r !== "unspecified") entry.reason = r;
          }
        }
      }
      revoked.push(entry);
    }
  }
  let crlNumber: bigint | undefined;
  let authorityKeyId: string | undefined;
  const extWrap = t.slice(j).find((n) => n.tag === 0xa0);
  if (extWrap) {
    const seq = der.children(buf, extWrap)[0];
    for (const x of seq ? der.children(buf, seq) : []) {
      const parts = der.children(buf, x);
      if (!parts[0]) continue;
      const oid = der.readOid(buf, parts[0]);
      const inner = der.content(buf, parts[parts.length - 1]!);
      if (oid === OID.cRLNumber) crlNumber = intValue(der.content(inner, der.read(inner)));
      if (oid === OID.authorityKeyIdentifier) {
        const k = der.children(inner, der.read(inner)).find((n) => n.tag === 0x80);
        if (k) authorityKeyId = der.toHex(der.content(inner, k));
      }
    }
  }
  const algOid = der.children(buf, algN)[0];
  return {
    der: buf,
    tbs: der.raw(buf, tbsN),
    signatureAlgorithm: algOid ? der.readOid(buf, algOid) : "",
    signature: der.content(buf, sigN).subarray(1),
    issuerRaw: der.raw(buf, issuerN),
    issuer: decodeName(buf, issuerN),
    thisUpdate: der.readTime(buf, thisN),
    nextUpdate,
    crlNumber,
    authorityKeyId,
    revoked,
  };
}
