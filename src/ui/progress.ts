/**
 * Spinners and progress bars: on a terminal only (never in --json mode, never
 * in a pipe), so scripts see clean output.
 */

/** What spinners and bars need of the CLI's Context (ui/ sits below cli/ and does not import it). */
export interface ProgressSettings {
  json: boolean;
  quiet: boolean;
  color: boolean;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export async function withSpinner<T>(ctx: ProgressSettings, text: string, slow: boolean, fn: () => Promise<T>): Promise<T> {
  if (!slow || ctx.json || ctx.quiet || !ctx.stderr.isTTY) return fn();
  const { default: ora } = await import("ora");
  const s = ora({ text, stream: ctx.stderr as NodeJS.WriteStream, isEnabled: ctx.color || undefined }).start();
  // Ctrl-C while the key is made: clear the spinner (and restore the cursor),
  // then let the signal do what it does by default
  const onInt = () => {
    s.fail(`${text}: cancelled, nothing was changed`);
    process.removeListener("SIGINT", onInt);
    process.kill(process.pid, "SIGINT");
  };
  process.once("SIGINT", onInt);
  try {
    const r = await fn();
    s.succeed();
    return r;
  } catch (e) {
    s.fail();
    throw e;
  } finally {
    process.removeListener("SIGINT", onInt);
  }
}

export interface Progress {
  tick(n?: number): void;
  stop(): void;
}

/** A bar for `total` steps of which `start` are already done; nothing off a terminal, in --json or --quiet, or for one step. */
export async function progressBar(ctx: ProgressSettings, label: string, total: number, start = 0): Promise<Progress> {
  if (ctx.json || ctx.quiet || !ctx.stderr.isTTY || total < 2) return { tick() {}, stop() {} };
  const { default: cliProgress } = await import("cli-progress");
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {value}/{total}`, stream: ctx.stderr as NodeJS.WriteStream, hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, start);
  let n = start;
  return {
    tick(k = 1) {
      n += k;
      bar.update(n);
    },
    stop() {
      bar.stop();
    },
  };
}
