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
import { readCrlInfo } from "./crl.js";

export interface ParsedCrlEntry {
  serial: string;
  revokedAt: Date;
  /** absent: no reasonCode (unspecified) */
  reason?: Reason;
  /** holdInstructionCode entry extension (dotted OID) */
  holdInstruction?: string;
  /** invalidityDate entry extension */
  invalidityDate?: Date;
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

function intValue(b: der.Bytes): bigint {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

/** The header through readCrlInfo (one parser for CRL headers), then every entry decoded. */
export function parseCrl(buf: der.Bytes): ParsedCrl {
  const info = readCrlInfo(buf);
  const revoked: ParsedCrlEntry[] = [];
  const list = info.revokedDer;
  if (list.length) {
    for (const e of der.children(list, der.read(list))) {
      const [sN, dN, extN] = der.children(list, e);
      if (!sN || sN.tag !== der.TAG.INTEGER || !dN || (dN.tag !== der.TAG.UTCTime && dN.tag !== der.TAG.GeneralizedTime)) throw new der.DerError("bad CRL entry");
      let sb = der.content(list, sN);
      if (sb.length > 1 && sb[0] === 0) sb = sb.subarray(1);
      const entry: ParsedCrlEntry = { serial: serialHex(sb), revokedAt: der.readTime(list, dN) };
      for (const x of extN ? der.children(list, extN) : []) {
        const parts = der.children(list, x);
        const oid = parts[0] ? der.readOid(list, parts[0]) : "";
        const inner = parts.length ? der.content(list, parts[parts.length - 1]!) : new Uint8Array(0);
        if (oid === OID.reasonCode) {
          const r = reasonFromCode(Number(intValue(der.content(inner, der.read(inner)))));
          if (r && r !== "unspecified") entry.reason = r;
        } else if (oid === "2.5.29.23") {
          entry.holdInstruction = der.readOid(inner, der.read(inner));
        } else if (oid === "2.5.29.24") {
          entry.invalidityDate = der.readTime(inner, der.read(inner));
        }
      }
      revoked.push(entry);
    }
  }
  const issuerRaw = info.issuerRaw;
  return {
    der: buf,
    tbs: info.tbs,
    signatureAlgorithm: info.signatureAlgorithm,
    signature: info.signature,
    issuerRaw,
    issuer: decodeName(issuerRaw, der.read(issuerRaw)),
    thisUpdate: info.thisUpdate,
    nextUpdate: info.nextUpdate,
    crlNumber: info.crlNumber,
    authorityKeyId: info.authorityKeyId,
    revoked,
  };
}
