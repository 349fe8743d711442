#!/usr/bin/env node
/**
 * What bin/pki.js runs: dist/ (tsc's output) joined into a few files under
 * dist/bundle/ by esbuild. `npm run build` runs tsc, then this.
 *
 *   dist/bundle/cli/run.js + chunks/  the commands, as ES modules
 *   dist/bundle/prefetch.cjs          the CA key's PBKDF2 started from argv
 *   dist/bundle/help.cjs              `pki --help` without commander
 *   dist/bundle/help.txt              what it prints off a terminal
 *
 * Why: node 20 loads ES modules one by one (resolve, realpath, read,
 * compile, link), and one sign-csr loaded 53 of ours. Bundled, it loads a
 * handful, and every command is still its own chunk (src/cli/run.ts imports
 * `../commands/${name}.js`, which esbuild turns into one chunk per command),
 * so `pki list` loads no signer. The two CommonJS files are what bin/pki.js
 * needs before any ES module: a CommonJS entry starts sooner, and the
 * PBKDF2 starts before the ES module loader does. Packages (commander,
 * pkcs11js, ...) stay outside: node resolves them from node_modules; except
 * pg and the packages it loads (BUNDLED below), which go into the chunk of
 * the PostgreSQL store: node loaded them as ~30 files, ~50 ms of every
 * `--store postgres://` command. Bundled CommonJS code calls require() for
 * node's own modules (net, tls, ...) and for what stays outside (pgpass,
 * the optional pg-native and pg-cloudflare, never loaded here): the banner
 * gives each ES module file a require() of its own.
 *
 * esbuild rather than hand-written concatenation: it rewrites imports,
 * hoists shared code into chunks and keeps ES module semantics, and it is
 * the most used bundler for exactly this (a devDependency: dist/ is built at
 * `npm ci` by `prepare`).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { build } from "esbuild";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const DIST = path.join(ROOT, "dist");
const OUT = path.join(DIST, "bundle");

if (!fs.existsSync(path.join(DIST, "cli", "run.js"))) {
  process.stderr.write("bundle: dist/cli/run.js is missing: run `npm run build` (tsc first, then this)\n");
  process.exit(1);
}
/** pg and the packages it requires when it loads: bundled (see above); every other package stays outside. */
const BUNDLED = /^(commander|pg|pg-pool|pg-protocol|pg-types|pg-connection-string|pg-int8|postgres-array|postgres-bytea|postgres-date|postgres-interval|xtend)(\/|$)/;
const packagesOutside = {
  name: "packages-outside",
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (a) => (BUNDLED.test(a.path) ? undefined : { path: a.path, external: true }));
  },
};
const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  packages: "external",
  logLevel: "warning",
  // an empty glob (no dist/commands) would build a CLI without commands
  logOverride: { "empty-glob": "error" },
};
fs.rmSync(OUT, { recursive: true, force: true });
await build({
  ...common,
  entryPoints: [path.join(DIST, "cli", "run.js")],
  outdir: OUT,
  outbase: DIST,
  packages: undefined,
  plugins: [packagesOutside],
  banner: { js: 'import { createRequire as __pkiCreateRequire } from "node:module"; const require = __pkiCreateRequire(import.meta.url);' },
  splitting: true,
  format: "esm",
  chunkNames: "chunks/[name]-[hash]",
});
// One file per command (dist/bundle/cmd/<module>.js): cli/run.js with only
// that command, no chunks. A sign-csr loaded ~20 of the chunks above (esbuild
// splits code by which commands share it), and node 20 spends a resolve, a
// read, a compile and a link on each: ~35 ms of a start, which on a 2-core
// machine also slows the CA key's PBKDF2 running beside it. Modules that
// only some runs load stay files of their own (dist/bundle/lazy/): the
// PostgreSQL store (pg bundled), the prompts (@inquirer/prompts), the token
// (pkcs11js) and PKCS#12 (pkijs); each has its own copy of what it shares
// with the command (core/errors.ts's PkiError answers instanceof for every
// copy). bin/pki.js takes the command's file when argv names a top-level
// command without subcommands and asks for no help (cmd/commands.json);
// anything else (help, `store migrate`, an unknown command) runs the build above.
const LAZY = { "store/pg-store.js": "pg-store", "ui/prompt.js": "prompt", "crypto/pkcs11.js": "pkcs11", "crypto/pkcs12.js": "pkcs12" };
const lazyOf = (abs) => Object.entries(LAZY).find(([rel]) => abs === path.join(DIST, rel))?.[1];
/** dynamic imports of the lazy modules: to their own files, from a file in dist/bundle/<dir>/ */
const lazyOutside = (dir) => ({
  name: "lazy-outside",
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (a) => {
      if (a.kind !== "dynamic-import") return undefined;
      const name = lazyOf(path.resolve(a.resolveDir, a.path));
      return name ? { path: dir === "lazy" ? `./${name}.js` : `../lazy/${name}.js`, external: true } : undefined;
    });
  },
});
const single = { ...common, packages: undefined, format: "esm", splitting: false, banner: { js: 'import { createRequire as __pkiCreateRequire } from "node:module"; const require = __pkiCreateRequire(import.meta.url);' } };
for (const [rel, name] of Object.entries(LAZY)) {
  await build({ ...single, entryPoints: [path.join(DIST, rel)], outfile: path.join(OUT, "lazy", `${name}.js`), plugins: [packagesOutside, lazyOutside("lazy")] });
}
const { COMMANDS } = await import(path.join(DIST, "cli", "program.js"));
const RUN = path.join(DIST, "cli", "run.js");
const DYNAMIC = "import(`../commands/${spec.module}.js`)";
const runSource = fs.readFileSync(RUN, "utf8");
if (!runSource.includes(DYNAMIC)) throw new Error(`bundle: ${RUN} no longer loads its command with ${DYNAMIC}: update scripts/bundle.mjs`);
const commands = {};
for (const spec of COMMANDS.filter((c) => !c.sub)) {
  const m = spec.module;
  // the one command this file serves; any other is a bug of bin/pki.js's choice, said as such
  const only = `(spec.module === ${JSON.stringify(m)} ? import("../commands/${m}.js") : Promise.reject(new Error("pki: internal: the file of \`pki ${spec.name}\` was loaded for another command")))`;
  await build({
    ...single,
    entryPoints: [RUN],
    outfile: path.join(OUT, "cmd", `${m}.js`),
    plugins: [
      packagesOutside,
      lazyOutside("cmd"),
      { name: "one-command", setup: (b) => b.onLoad({ filter: /[\\/]cli[\\/]run\.js$/ }, (a) => (a.path === RUN ? { contents: runSource.replace(DYNAMIC, only), loader: "js", resolveDir: path.dirname(RUN) } : undefined)) },
    ],
  });
  commands[spec.name] = m;
}
fs.writeFileSync(path.join(OUT, "cmd", "commands.json"), JSON.stringify(commands) + "\n");
for (const name of ["prefetch", "help"]) {
  await build({
    ...common,
    entryPoints: [path.join(DIST, "cli", `${name}.js`)],
    outfile: path.join(OUT, `${name}.cjs`),
    format: "cjs",
    // import.meta.url, should their code ever read it, is this file's URL (made then: node:url is not loaded at start)
    define: { "import.meta.url": "__pki_meta.url" },
    banner: { js: 'const __pki_meta = { get url() { return require("node:url").pathToFileURL(__filename).href; } };' },
  });
}
// `pki --help` into a pipe or a file (no terminal width): this very text,
// made now from the same build, so that bin/pki.js only reads a file
fs.writeFileSync(path.join(OUT, "help.txt"), createRequire(import.meta.url)(path.join(OUT, "help.cjs")).rootHelp(undefined));
