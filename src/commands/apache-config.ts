/**
 * pki apache-config: print an Apache httpd virtual host for mutual TLS with
 * this CA (templates/apache/); the same options as `pki nginx-config`.
 */
import type { Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { renderServerConfig, type ServerConfigOpts } from "./nginx-config.js";

export async function run(ctx: Context, _args: string[], o: ServerConfigOpts): Promise<Result> {
  return renderServerConfig(ctx, o, "apache");
}
