/**
 * Which store a command works on (issue #9): a `postgres://` or
 * `postgresql://` URL opens the PostgreSQL store (store/pg-store.ts, loaded
 * only then), anything else is a CA directory (store/dir-store.ts).
 */
import { DirStore } from "./dir-store.js";
import type { CaStore } from "./store.js";

import { isDatabaseUrl } from "./db-url.js";

export { isDatabaseUrl };

export async function openStore(location: string): Promise<CaStore> {
  if (isDatabaseUrl(location)) {
    const { openPgStore } = await import("./pg-store.js");
    return openPgStore(location);
  }
  return new DirStore(location);
}
