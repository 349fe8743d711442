/**
 * run(argv): parse, dispatch, print, and map every error to an exit code.
 * bin/pki.js is the only place that calls process.exit.
 */
import * as commanderLib from "commander";
import { Command, CommanderError } from "commander";
import { buildProgram, COMMANDS, GLOBAL_KEYS, useCommander, type CommandSpec } from "./program.js";
import { makeContext, passphraseTyped, type Context, type GlobalOptions } from "./context.js";
import { printError, printResult, type Result, type Sink } from "./output.js";
import { PkiError } from "../core/errors.js";
import { VERSION } from "./version.js";
import { soleCommandWord } from "./argv.js";

useCommander(commanderLib);

/** A command module: its run() gets the table entry too (one module may serve several entries: import easyrsa | openssl-ca). */
export type CommandModule = { run(ctx: Context, args: string[], opts: Record<string, unknown>, spec: CommandSpec): Promise<Result> };

/** Global options may come before or after the command: take each from wherever it was given. */
function globalsOf(cmd: Command): GlobalOptions {
  const out: Record<string, unknown> = {};
  const chain: Command[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) chain.unshift(c);
  for (const c of chain) {
    const o = c.opts();
    for (const k of GLOBAL_KEYS) {
      const src = c.getOptionValueSource(k);
      if (src !== undefined && src !== "default" && o[k] !== undefined) out[k] = o[k];
    }
  }
  return out as GlobalOptions;
}

function commandOpts(cmd: Command): Record<string, unknown> {
  const o = { ...cmd.opts() };
  for (const k of GLOBAL_KEYS) delete o[k];
  return o;
}

/**
 * The command argv names, when the program can be built with it alone: a
 * top-level command, and no help or version asked for (help lists the
 * others; an unknown command is suggested among them). Else undefined.
 */
export function soleCommand(argv: readonly string[]): string | undefined {
  const name = soleCommandWord(argv);
  return name !== undefined && name !== "help" && COMMANDS.some((c) => c.name === name) ? name : undefined;
}

export async function run(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const jsonWanted = argv.includes("--json");
  const sink: Sink = { json: jsonWanted, stdout: process.stdout, stderr: process.stderr };
  const debug = !!env.PKI_DEBUG && env.PKI_DEBUG !== "0";
  let exitCode = 0;

  const program = buildProgram(VERSION, async (spec: CommandSpec, cmd: Command, args: string[]) => {
    const g = globalsOf(cmd);
    const ctx = makeContext(g, env);
    sink.json = ctx.json;
    sink.quiet = ctx.quiet;
    let mod: CommandModule;
    try {
      mod = (await import(`../commands/${spec.module}.js`)) as CommandModule;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ERR_MODULE_NOT_FOUND" && String((e as Error).message).includes(`commands/${spec.module}.js`)) {
        throw new PkiError("USAGE", `\`pki ${spec.name}\` is not available in this build`, { exitCode: 2 });
      }
      throw e;
    }
    try {
      const result = await mod.run(ctx, args, commandOpts(cmd), spec);
      exitCode = printResult(sink, result);
    } catch (e) {
      // audit.log: one line per refusal of a command that changes CA state (`audited` in the command table)
      // (not when the store itself failed: a second attempt at a database that is gone would only add its timeout)
      if (spec.audited && e instanceof PkiError && e.code !== "USAGE" && !e.code.startsWith("STORE_")) {
        const command = cmd.parent && cmd.parent.parent ? `${cmd.parent.name()} ${spec.name}` : spec.name;
        try {
          await (await ctx.openStore()).audit([{ command, ...ctx.auditInfo, outcome: e.details?.committed ? "partial" : "refused", error: e.code, message: e.message, ...(e.details?.committed ? { committed: e.details.committed } : {}) }]);
        } catch {
          // the audit log must never turn a refusal into another error
        }
      }
      throw e;
    } finally {
      await ctx.closeStore();
    }
  }, soleCommand(argv));

  program.exitOverride();
  program.configureOutput({
    writeOut: (s) => process.stdout.write(s),
    // commander's own error text is replaced by ours (see the catch below);
    // writeErr then only carries help shown for a missing subcommand
    writeErr: (s) => (jsonWanted ? true : process.stderr.write(s)),
    outputError: () => {},
  });
  for (const c of allCommands(program)) {
    c.exitOverride();
    c.configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: (s) => (jsonWanted ? true : process.stderr.write(s)), outputError: () => {} });
  }

  try {
    await program.parseAsync(argv, { from: "user" });
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return 0;
      if (e.code === "commander.help" && e.exitCode !== 0 && sink.json) {
        // `pki --json` with no command: a script asked for a document and gets
        // a usage error in that form (the help went nowhere, see writeErr)
        return printError(sink, new PkiError("USAGE", "a command is missing: run `pki --help` (or `pki <command> --help`) for the commands", { exitCode: 2 }), debug);
      }
      if (e.code === "commander.help") return e.exitCode === 0 ? 0 : 2;
      if (e.code === "commander.executeSubCommandAsync") return 0;
      // "--passphrase=hunter2" mistyped must not print the secret: show option names only
      const first = e.message.replace(/^error: /, "").replace(/\n[\s\S]*$/, "").replace(/'(-{1,2}[^'=\s]+)=[^']*'/g, "'$1=…'");
      // commander's suggestion ("(Did you mean issue?)") on the same line, quoted like the typo
      const guess = /\(Did you mean (?:one of )?([^)?]+)\?\)/.exec(e.message)?.[1];
      const msg = guess ? `${first} (did you mean ${guess.split(/,\s*/).map((g) => `'${g}'`).join(" or ")}?)` : first;
      const named = argv.find((a) => program.commands.some((c) => c.name() === a));
      const hint = e.code === "commander.unknownCommand" || !named ? "; run `pki --help` for the commands" : `; see \`pki ${named} --help\``;
      return printError(sink, new PkiError("USAGE", msg + hint, { exitCode: 2 }), debug);
    }
    if (e instanceof PkiError && e.code === "BAD_PASSPHRASE" && passphraseTyped && /check --passphrase-file/.test(e.message)) {
      const typed = new PkiError("BAD_PASSPHRASE", e.message.replace(/^the passphrase/, "the passphrase typed at the prompt").replace(/: check --passphrase-file.*$/, ": nothing was changed; run the command again and check the passphrase (Caps Lock, keyboard layout)"));
      return printError(sink, typed, debug);
    }
    return printError(sink, e, debug);
  }
}

function allCommands(c: Command): Command[] {
  return c.commands.flatMap((s) => [s, ...allCommands(s)]);
}
