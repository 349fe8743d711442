/**
 * pki apache-config: print an Apache httpd virtual host for mutual TLS with
 * this CA (templates/apache/); the same options as `pki nginx-config`, the
 * same work (ca/server-config.ts).
 */
import type { Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { VERIFY_MODES } from "../cli/program.js";
import { serverConfig, type ServerConfigOpts } from "../ca/server-config.js";
import { choiceOption } from "./options.js";

export async function run(ctx: Context, _args: string[], o: Omit<ServerConfigOpts, "verify"> & { verify?: string }): Promise<Result> {
  const store = await ctx.openStore();
  const r = await serverConfig(store, { ...o, verify: choiceOption(o.verify, "--verify", VERIFY_MODES) }, "apache", ctx.now());
  return { data: r.data, stdout: r.config, messages: r.messages };
}
