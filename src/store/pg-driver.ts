/**
 * The `pg` module, loaded without the runtime probe that costs most of its
 * load on node 20 (store/pg-navigator.ts, imported first: ES modules are
 * evaluated in import order, and so is the bundle esbuild makes of them).
 * scripts/bundle.mjs bundles pg and its own packages into the chunk that
 * imports this module: one file to read instead of ~30 for node to resolve
 * and compile one by one.
 */
import { navigatorStandIn } from "./pg-navigator.js";
import pg from "pg";

if (navigatorStandIn) delete (globalThis as { navigator?: unknown }).navigator;

export default pg;
