/**
 * Revocation reasons (RFC 5280 5.3.1): pki's name, the CRL reasonCode and
 * OpenSSL's spelling in index.txt. A leaf module: the command table
 * (cli/program.ts, loaded for `pki --help`) takes its --reason choices here.
 */
export const REASONS = {
  unspecified: { code: 0, openssl: "unspecified" },
  keyCompromise: { code: 1, openssl: "keyCompromise" },
  caCompromise: { code: 2, openssl: "CACompromise" },
  affiliationChanged: { code: 3, openssl: "affiliationChanged" },
  superseded: { code: 4, openssl: "superseded" },
  cessationOfOperation: { code: 5, openssl: "cessationOfOperation" },
  certificateHold: { code: 6, openssl: "certificateHold" },
} as const;
export type Reason = keyof typeof REASONS;
export const REASON_NAMES = Object.keys(REASONS) as Reason[];
