#!/bin/sh
":" //; case "${NODE_OPTIONS-}" in *openssl-ca*) ;; *) [ -z "${NODE_EXTRA_CA_CERTS-}" ] || { PKI_NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS; export PKI_NODE_EXTRA_CA_CERTS; unset NODE_EXTRA_CA_CERTS; } ;; esac; GLIBC_TUNABLES="glibc.malloc.hugetlb=1${GLIBC_TUNABLES:+:$GLIBC_TUNABLES}" exec node "$0" "$@"
// The pki entry point: the only place that exits the process.
//
// Run as a program (`pki`, `npx pki`, ./bin/pki.js), this file is first a
// shell script: the line above starts node on this same file (for node it
// is a string and a comment) with glibc's malloc asked to use transparent
// huge pages for its large blocks (glibc.malloc.hugetlb=1: madvise, not
// reserved pages; a GLIBC_TUNABLES of the user's comes after and wins). On
// the virtual machines we measure, the first write to each 4 KiB page of a
// new buffer costs ~14 us: a 1,000,000-entry CRL touches ~220 MB of fresh
// buffers and spent ~0.8 s of its 2.7 s there; with 2 MiB pages it runs in
// 1.9 s at the same peak memory (README, Performance). Elsewhere the
// setting is ignored (musl, THP off), and `node bin/pki.js` runs without it.
//
// The same line keeps NODE_EXTRA_CA_CERTS from node's start: node reads
// that bundle (and parses its own ~140 roots) before any JavaScript runs,
// ~40 ms of every start, and pki needs trusted roots only for a TLS
// connection to PostgreSQL. Below, the variable is put back at once (child
// processes see it as set), and store/extra-ca.ts adds the file to what a
// PostgreSQL TLS connection trusts, as node would have. Left alone when
// NODE_OPTIONS picks the system store (--use-openssl-ca): that store is
// not node's bundled one, and pki would not rebuild it.
//
// CommonJS (bin/package.json), because node starts a CommonJS entry ~10 ms
// sooner than an ES module one, and scripts call pki in loops. `pki
// --version` and `pki --help` answer from here and a small CommonJS bundle,
// without the ES module loader, commander or any crypto; every other command
// starts the CA key's PBKDF2 (dist/bundle/prefetch.cjs) before it loads its
// own modules: the command's one file (dist/bundle/cmd/<command>.js), or for
// help, subcommands and unknown words the whole program (dist/bundle/cli/run.js
// and its chunks; scripts/bundle.mjs).
//
// A reader that stops early (`pki list | head`, `pki issue --help | head -1`)
// closes the pipe: the rest of the output has nowhere to go and nobody to
// read it. End quietly with status 0, as `cat`, `ls` and git do under a
// shell that ignores SIGPIPE, so that `set -o pipefail` scripts keep working.
"use strict";
{
  const extraCa = process.env.PKI_NODE_EXTRA_CA_CERTS;
  if (extraCa !== undefined) {
    delete process.env.PKI_NODE_EXTRA_CA_CERTS;
    process.env.NODE_EXTRA_CA_CERTS = extraCa;
    globalThis[Symbol.for("pki.extra-ca-certs")] = extraCa;
  }
}
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e) => {
    if (e && e.code === "EPIPE") process.exit(0);
    throw e;
  });
}
const argv = process.argv.slice(2);
// dist/ missing or half built (a clone without `npm ci`, an interrupted build) is said in one line;
// anything else that fails to load (a package missing from node_modules, EMFILE) is named as it is
const loadFailed = (e) => {
  const ours = e && /MODULE_NOT_FOUND|ENOENT/.test(e.code) && /[\\/]dist[\\/]bundle[\\/]/.test(String(e.message));
  process.stderr.write(ours ? "pki: error: the build is incomplete (dist/bundle is missing a file): run `npm run build`\n" : `pki: error: cannot load pki: ${e && e.message}\n`);
  process.exitCode = 1;
};
try {
  if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
    // the one place the number is spelled (src/cli/version.ts reads it too, for commander's -V)
    process.stdout.write(require("../package.json").version + "\n");
  } else if (argv.length === 1 && (argv[0] === "--help" || argv[0] === "-h")) {
    // off a terminal, the text scripts/bundle.mjs rendered at build time (the same rootHelp, no width)
    process.stdout.write(process.stdout.isTTY ? require("../dist/bundle/help.cjs").rootHelp(process.stdout.columns) : require("node:fs").readFileSync(`${__dirname}/../dist/bundle/help.txt`, "utf8"));
  } else {
    // the CA key's PBKDF2 starts now, on the thread pool, while the command's
    // modules load (a guess from argv that changes nothing: src/cli/prefetch.ts)
    const prefetch = require("../dist/bundle/prefetch.cjs");
    prefetch.prefetchCaKey(argv, process.env);
    // a top-level command is one file of its own (dist/bundle/cmd/, scripts/bundle.mjs);
    // help, subcommands and anything unknown run the whole program
    const word = prefetch.soleCommandWord(argv);
    const commands = word === undefined ? {} : JSON.parse(require("node:fs").readFileSync(`${__dirname}/../dist/bundle/cmd/commands.json`, "utf8"));
    const own = word !== undefined && Object.hasOwn(commands, word) ? commands[word] : undefined;
    import(own === undefined ? "../dist/bundle/cli/run.js" : `../dist/bundle/cmd/${own}.js`).then(async ({ run }) => {
      process.exitCode = await run(argv);
    }, loadFailed);
  }
} catch (e) {
  loadFailed(e);
}
