/**
 * Prompts (inquirer). The only module that talks to a person interactively;
 * it is imported lazily, only when a terminal is attached and input is missing.
 */
import { input, password, select, confirm } from "@inquirer/prompts";
import { PkiError } from "../core/errors.js";

const opts = { output: process.stderr } as const;

function cancelled(e: unknown): never {
  if ((e as Error)?.name === "ExitPromptError") throw new PkiError("USAGE", "cancelled at the prompt; nothing was changed", { exitCode: 2 });
  throw e;
}

export async function askSecret(message: string): Promise<string> {
  try {
    const v = await password({ message, mask: false, validate: (s) => (s.length > 0 ? true : "the passphrase must not be empty") }, opts);
    return v;
  } catch (e) {
    cancelled(e);
  }
}

/** A new passphrase, asked twice. */
export async function askNewSecret(message: string, minLength = 8): Promise<string> {
  try {
    for (;;) {
      const a = await password({ message, mask: false, validate: (s) => (s.length >= minLength ? true : `use at least ${minLength} characters`) }, opts);
      const b = await password({ message: "Repeat it", mask: false }, opts);
      if (a === b) return a;
      process.stderr.write("The two entries differ; try again.\n");
    }
  } catch (e) {
    cancelled(e);
  }
}

/** A line of text; `check` validates each answer at the prompt (a message: ask again), so a bad answer never costs the others. */
export async function askText(message: string, def?: string, required = false, check?: (s: string) => string | null): Promise<string> {
  try {
    return (await input({ message, default: def, validate: (s) => (required && s.trim() === "" ? "required" : (check?.(s.trim()) ?? true)) }, opts)).trim();
  } catch (e) {
    cancelled(e);
  }
}

export async function askChoice<T extends string>(message: string, choices: readonly T[], def: T): Promise<T> {
  try {
    return await select({ message, choices: choices.map((c) => ({ value: c, name: c })), default: def }, opts);
  } catch (e) {
    cancelled(e);
  }
}

export async function askYesNo(message: string, def: boolean): Promise<boolean> {
  try {
    return await confirm({ message, default: def }, opts);
  } catch (e) {
    cancelled(e);
  }
}
