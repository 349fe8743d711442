/**
 * pki nginx-config: print an nginx server block for mutual TLS with this CA
 * (--snippet: only the client-auth block). The work is ca/server-config.ts,
 * shared with `pki apache-config`.
 */
import type { Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { VERIFY_MODES } from "../cli/program.js";
import { serverConfig, type ServerConfigOpts } from "../ca/server-config.js";
import { choiceOption } from "./options.js";

export async function run(ctx: Context, _args: string[], o: Omit<ServerConfigOpts, "verify"> & { verify?: string }): Promise<Result> {
  const store = await ctx.openStore();
  const r = await serverConfig(store, { ...o, verify: choiceOption(o.verify, "--verify", VERIFY_MODES) }, "nginx", ctx.now());
  return { data: r.data, stdout: r.config, messages: r.messages };
}
