/**
 * Imported by store/pg-driver.ts just before `pg`, and only for it: pg
 * decides at load time whether it runs in a Cloudflare Worker
 * (pg/lib/stream.js isCloudflareRuntime). Where `navigator` is not defined
 * (node 20; node >= 21 defines it) it builds a `new Response(...)`, which
 * loads node's whole fetch implementation (undici): ~50-150 ms of CPU for
 * every `pki --store postgres://...` command, which needs none of it. A
 * `navigator` with a non-Cloudflare userAgent stands in while pg loads, only
 * when none exists; pg-driver.ts removes it as soon as pg is loaded, so
 * nothing else ever sees it.
 */
const g = globalThis as { navigator?: unknown };

/** true when this module defined the stand-in (pg-driver.ts deletes it) */
export const navigatorStandIn = !("navigator" in g);
if (navigatorStandIn) Object.defineProperty(g, "navigator", { value: { userAgent: "node (pki)" }, configurable: true, writable: true });
