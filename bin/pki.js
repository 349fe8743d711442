#!/usr/bin/env node
// The pki entry point: the only place that exits the process.
// `pki --version` answers without loading anything else (start-up time matters
// to scripts that call pki in loops).
const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
  process.stdout.write("0.1.0\n");
} else {
  const { run } = await import("../dist/cli/run.js");
  process.exitCode = await run(argv);
}
