/**
 * ca/authority.ts releaseFailure: the --out files could not all be put in
 * place after the index commit. With keys among them the advice is to revoke
 * and issue again; with certificates alone (sign-csr) they are kept by the CA.
 */
import { describe, expect, it } from "vitest";
import { releaseFailure } from "../../src/ca/authority.js";
import { PkiError } from "../../src/core/errors.js";

const cause = new PkiError("IO_ERROR", "cannot write out/a.key: the disk is full");
const issued = ["0A", "0B", "0C", "0D", "0E"].map((serial) => ({ serial }));

describe("releaseFailure", () => {
  it("pairs (keys among the files): revoke those without their key, every serial in details", () => {
    const e = releaseFailure(cause, issued, true);
    expect(e.code).toBe("IO_ERROR");
    expect(e.message).toBe('the index records 5 new certificate(s) (0A, 0B, 0C and 2 more), but their files could not all be put in place: cannot write out/a.key: the disk is full; a certificate whose key file is not there serves nobody: revoke it (pki revoke <serial>...; --json lists every serial under "committed", as audit.log does) and issue it again');
    expect(e.details).toEqual({ committed: { issued: ["0A", "0B", "0C", "0D", "0E"], revoked: [] } });
  });

  it("certificates alone (sign-csr): nothing to revoke, they are kept by the CA", () => {
    const e = releaseFailure(cause, issued.slice(0, 2), false);
    expect(e.message).toMatch(/^the index records 2 new certificate\(s\) \(0A, 0B\), but their files could not all be put in place: .*; each certificate is valid and kept by the CA \(certs\/<serial>\.pem in a CA directory/);
    expect(e.message).not.toMatch(/revoke/);
  });
});
