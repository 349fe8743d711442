/**
 * The `pg` module, loaded without the runtime probe that costs most of its
 * load on node 20. pg decides at load time whether it runs in a Cloudflare
 * Worker (pg/lib/stream.js isCloudflareRuntime): where `navigator` is not
 * defined (node 20; node >= 21 defines it) it builds a `new Response(...)`,
 * which loads node's whole fetch implementation (undici), ~50-150 ms of CPU
 * for every `pki --store postgres://...` command that needs none of it.
 * Here a `navigator` with a non-Cloudflare userAgent stands only while pg
 * loads, and only when none exists: the probe answers "node" at once, pg
 * takes its ordinary node:net path, and nothing else ever sees the stand-in.
 */
import { createRequire } from "node:module";
import type * as Pg from "pg";

function load(): typeof Pg {
  const g = globalThis as { navigator?: unknown };
  const standIn = !("navigator" in g);
  if (standIn) Object.defineProperty(g, "navigator", { value: { userAgent: "node (pki)" }, configurable: true, writable: true });
  try {
    return createRequire(import.meta.url)("pg") as typeof Pg;
  } finally {
    if (standIn) delete g.navigator;
  }
}

const pg = load();
export default pg;
