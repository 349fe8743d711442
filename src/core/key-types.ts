/**
 * The key types pki generates. A leaf module: the command table
 * (cli/program.ts, loaded for `pki --help`) takes its --key-type choices here,
 * crypto/keys.ts generates them.
 */
export const KEY_TYPES = ["ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096", "ed25519"] as const;
export type KeyType = (typeof KEY_TYPES)[number];
