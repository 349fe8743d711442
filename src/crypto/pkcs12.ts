/**
 * PKCS#12 files (pkijs behind this one module). Placeholder until the
 * PKCS#12 work lands.
 */
import type { KeyObject } from "node:crypto";
import { PkiError } from "../core/errors.js";

export interface Pkcs12Params {
  key: KeyObject;
  certPem: string;
  caPem: string;
  password: string;
  format: "modern" | "compat";
  friendlyName: string;
}

export async function buildPkcs12(_p: Pkcs12Params): Promise<Uint8Array> {
  throw new PkiError("USAGE", "PKCS#12 output is not available in this build yet", { exitCode: 2 });
}
