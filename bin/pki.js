#!/usr/bin/env node
// The pki entry point: the only place that exits the process.
// `pki --version` and `pki --help` answer without loading commander or any
// crypto (start-up time matters to scripts that call pki in loops); every
// other command imports only its own module (src/cli/run.ts).
// A reader that stops early (`pki list | head`, `pki issue --help | head -1`)
// closes the pipe: the rest of the output has nowhere to go and nobody to
// read it. End quietly with status 0, as `cat`, `ls` and git do under a
// shell that ignores SIGPIPE, so that `set -o pipefail` scripts keep working.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e) => {
    if (e && e.code === "EPIPE") process.exit(0);
    throw e;
  });
}
const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
  const { VERSION } = await import("../dist/cli/version.js");
  process.stdout.write(VERSION + "\n");
} else if (argv.length === 1 && (argv[0] === "--help" || argv[0] === "-h")) {
  const { rootHelp } = await import("../dist/cli/help.js");
  process.stdout.write(rootHelp(process.stdout.isTTY ? process.stdout.columns : undefined));
} else {
  // the CA key's PBKDF2 starts now, on the thread pool, while the command's
  // modules load (a guess from argv that changes nothing: src/cli/prefetch.ts)
  (await import("../dist/cli/prefetch.js")).prefetchCaKey(argv, process.env);
  const { run } = await import("../dist/cli/run.js");
  process.exitCode = await run(argv);
}
