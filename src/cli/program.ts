/**
 * The command table: the one source of what each command is called, takes
 * (options, their help text and the values they accept), prints in --help,
 * and whether its refusals are audited. Commander's parser (buildProgram),
 * `pki --help` (cli/help.ts), `pki completion` and audit.log all read it.
 * Defining commands costs nothing at start-up: each command's module (and the
 * crypto it needs) is imported only when that command runs, and this module
 * imports only leaf vocabularies. Adding a command: one entry here, its file
 * in src/commands/, its tests.
 */
import { createRequire } from "node:module";
import type { Command } from "commander";
import type { GlobalOptions } from "./context.js";
import { KEY_TYPES } from "../core/key-types.js";
import { REASON_NAMES } from "../core/reasons.js";

// commander is loaded when a program is built, not when this table is
// imported: `pki --help` renders from the table alone (cli/help.ts).
// cli/run.ts hands over the copy it imports (bundled into its chunk by
// scripts/bundle.mjs: one copy, so that its CommanderError is the one thrown).
let loaded: typeof import("commander") | undefined;
const commander = (): typeof import("commander") => (loaded ??= createRequire(import.meta.url)("commander") as typeof import("commander"));
export function useCommander(lib: typeof import("commander")): void {
  loaded = lib;
}

/**
 * The values an option or a positional argument takes: a fixed list, the
 * CA's profiles (built-in and custom), a file or a directory.
 */
export type Choices = readonly string[] | "profiles" | "file" | "dir";

/** flags, help text, and the values it takes where its placeholder does not say (<file>, <path>: a file; <dir>: a directory). */
export type OptionSpec = readonly [flags: string, description: string, choices?: Choices];

export interface CommandSpec {
  name: string;
  /** "<csr...>", "<profile> [name]" */
  args?: string;
  /** what the first positional argument takes, where `args` does not say (<csr>, <cert>, <target>, <file>: a file; <dir>: a directory) */
  argChoices?: Choices;
  summary: string;
  options?: OptionSpec[];
  examples: string[];
  /** module under src/commands/ */
  module: string;
  /** it changes CA state: a refusal (other than a usage error) is a line in audit.log */
  audited?: true;
  /** exit 1 means more than failure for this command */
  exit1?: string;
  sub?: CommandSpec[];
}

// the fixed vocabularies of options that no domain module owns; commands check values against these
export const LIST_STATUSES = ["valid", "revoked", "expired", "all"] as const;
export const LIST_FORMATS = ["table", "serial", "dn"] as const;
export const P12_FORMATS = ["modern", "compat"] as const;
export const PURPOSES = ["client", "server", "code-signing"] as const;
export const VERIFY_MODES = ["on", "optional"] as const;
export const SHELLS = ["bash", "zsh"] as const;

/** Options that several commands take: each defined once, with one help text. */
const SHARED = {
  /** The CA key on a PKCS#11 token, for every command that signs (README "CA key in a token"). */
  key: ["--key <uri>", "CA key on a PKCS#11 token: pkcs11:token=...;object=...?module-path=...&pin-source=file:... (default: pki.json \"key\", else private/ca.key); PIN from pin-source or $PKI_PKCS11_PIN"],
  days: ["--days <n>", "validity in days (default: a certificate its profile's, else pki.json's, 365; a CRL pki.json's, 7; a CA 3650, 1825 with --parent)"],
  keyType: ["--key-type <type>", `${KEY_TYPES[0]} (default), ${KEY_TYPES.slice(1).join(", ")}`, KEY_TYPES],
  p12PassphraseFile: ["--p12-passphrase-file <file>", "password of the PKCS#12 file (else asked)"],
  p12Format: ["--p12-format <format>", "modern (AES-256, default) or compat (3DES/SHA-1, old Windows and appliances)", P12_FORMATS],
  noPassphrase: ["--no-passphrase", "store the CA key unencrypted (not recommended)"],
  crlDays: ["--crl-days <n>", "validity of each CRL in days (default 7)"],
} satisfies Record<string, OptionSpec>;

const IMPORT_OPTIONS = (easyrsa: boolean): OptionSpec[] => [
  ["--source-passphrase-file <file>", "passphrase of the source CA key (first line; else asked on a terminal)"],
  ["--dry-run", "read and check the source, report what would be imported, write nothing"],
  ["--skip-broken", "import despite problems in the source: broken valid entries are left out, revoked ones stay revoked"],
  ...(easyrsa ? [["--no-keys", "do not copy easy-rsa's private/<name>.key of valid issued names"] as const] : []),
  SHARED.noPassphrase,
  SHARED.crlDays,
];

const SAN_HELP = "subjectAltNames, comma-separated: dns:NAME, ip:ADDR, email:ADDR, uri:URI (bare names are DNS)";

export const COMMANDS: CommandSpec[] = [
  {
    name: "init",
    summary: "create a CA in the directory (interactive on a terminal)",
    module: "init",
    options: [
      SHARED.key,
      ["--cn <name>", "common name of the CA (required without a terminal)"],
      ["--org <name>", "organisation (O)"],
      ["--ou <name>", "organisational unit (OU)"],
      ["--country <cc>", "two-letter country code (C)"],
      ["--locality <name>", "locality (L)"],
      ["--state <name>", "state or province (ST)"],
      ["--subject <dn>", "the whole subject instead: \"CN=Acme CA,O=Acme,C=FR\""],
      SHARED.keyType,
      SHARED.days,
      ["--path-len <n>", "basicConstraints pathLenConstraint (0: may issue leaves only)"],
      ["--code-signing", "tag the CA for code signing (adds codeSigning + clientAuth + serverAuth EKU)"],
      ["--crl-url <url>", "CRL distribution point written into every certificate"],
      ["--ocsp-url <url>", "OCSP responder URL (AIA) written into every certificate"],
      ["--ca-issuers-url <url>", "URL of the CA certificate (AIA caIssuers)"],
      SHARED.crlDays,
      ["--default-days <n>", "default validity of issued certificates (default 365)"],
      SHARED.noPassphrase,
      ["--import-cert <file>", "adopt an existing CA certificate (PEM)"],
      ["--import-key <file>", "the key of --import-cert (PEM; asked for its passphrase if encrypted)"],
      ["--parent <dir>", "make an issuing CA signed by the CA in <dir> (recorded in its index; pathLen 0 unless --path-len)"],
      ["--parent-passphrase-file <file>", "passphrase of the parent CA's key (else asked)"],
      ["--parent-name <name>", "the name the parent records this CA under (default: this directory's name)"],
      ["--name-constraints <list>", "permitted subtrees, critical: dns:acme.lan,ip:10.0.0.0/8,email:acme.lan,uri:acme.lan"],
    ],
    examples: [
      "pki init                                   # asks for name, key type, passphrase",
      "pki init --cn \"Acme Internal CA\" --org Acme --passphrase-file /root/ca.pass",
      "pki init --cn \"Deploy CA\" --code-signing --crl-url http://pki.example.lan/crl.pem --passphrase-file pass",
      "pki init --import-cert old/ca.crt --import-key old/ca.key --passphrase-file pass",
      "pki -d issuing init --cn \"Acme Issuing CA 1\" --parent root --parent-passphrase-file root.pass --passphrase-file pass",
      "pki init --cn \"Acme Root\" --name-constraints dns:acme.lan,ip:10.0.0.0/8 --passphrase-file pass",
    ],
  },
  {
    name: "sign-csr",
    args: "<csr...>",
    summary: "sign certificate signing requests (PEM or DER; - for stdin)",
    module: "sign-csr",
    audited: true,
    options: [
      SHARED.key,
      ["--profile <name>", "code-signing, ssl, server, client, or a custom profile (required)", "profiles"],
      ["--out <file>", "write the certificate here (default: stdout)"],
      ["--out-dir <dir>", "with several CSRs: one <csr-name>.crt per CSR here"],
      SHARED.days,
      ["--cn <name>", "replace the CSR's common name"],
      ["--san <list>", `replace the CSR's ${SAN_HELP}`],
      ["--chain", "append the CA certificates after the leaf, up to but not including the root (an issuing CA's certificate; none in a one-tier CA)"],
      ["--dry-run", "sign nothing; show what would be issued next to what was requested"],
      ["--name <name>", "record the certificate under this issued name (issued/<name>.crt): then `pki revoke <name>`"],
      ["--replace", "with --name: revoke the name's valid certificate (superseded) in the same step, instead of refusing"],
      ["--name-from-cn", "name each certificate after its CSR's CN (batches)"],
    ],
    examples: [
      "pki sign-csr agent.csr --profile ssl --out agent.crt --passphrase-file /etc/pki/pass",
      "pki sign-csr - --profile ssl --name agent7 --replace --json < agent7.csr   # a registration hook",
      "pki sign-csr csrs/*.csr --profile client --name-from-cn --passphrase-file pass",
      "cat agent.csr | pki sign-csr - --profile code-signing --json --passphrase-file pass",
      "pki sign-csr csrs/*.csr --profile client --out-dir signed/ --passphrase-file pass",
      "pki sign-csr agent.csr --profile server --dry-run",
    ],
  },
  {
    name: "issue",
    args: "<profile> [name]",
    argChoices: "profiles",
    summary: "generate a key pair and a certificate for it in one step",
    module: "issue",
    audited: true,
    options: [
      SHARED.key,
      ["--san <list>", SAN_HELP],
      ["--cn <name>", "common name (default: the name)"],
      SHARED.keyType,
      SHARED.days,
      ["--out-dir <dir>", "write <name>.crt, <name>.chain.crt and <name>.key here instead of issued/ and private/"],
      ["--key-passphrase-file <file>", "encrypt the new key with this passphrase (default: unencrypted, so nginx can read it)"],
      ["--names-from <file>", "issue one pair per line of the file (- for stdin)"],
      ["--p12", "also write <name>.p12 (PKCS#12 with key, certificate and CA)"],
      SHARED.p12PassphraseFile,
      SHARED.p12Format,
    ],
    examples: [
      "pki issue server web1 --san dns:web1.example.lan,ip:10.0.0.5 --passphrase-file pass",
      "pki issue client alice --p12 --p12-passphrase-file alice.pass --passphrase-file pass",
      "pki issue client --names-from agents.txt --passphrase-file pass --json",
    ],
  },
  {
    name: "export",
    summary: "export an issued name in another format",
    module: "export",
    examples: ["pki export p12 alice --out alice.p12 --p12-passphrase-file alice.pass"],
    sub: [
      {
        name: "p12",
        args: "<target>",
        summary: "write a PKCS#12 (key, certificate, CA) for an issued name whose key the CA directory holds",
        module: "export-p12",
    audited: true,
        options: [
          ["--out <file>", "output file (default: <name>.p12 in the current directory)"],
          SHARED.p12PassphraseFile,
          SHARED.p12Format,
          ["--key-passphrase-file <file>", "passphrase of private/<name>.key when it is encrypted"],
        ],
        examples: ["pki export p12 alice --out alice.p12 --p12-passphrase-file alice.pass", "pki export p12 bob --p12-format compat --p12-passphrase-file bob.pass"],
      },
    ],
  },
  {
    name: "import",
    summary: "create a CA directory from an existing easy-rsa PKI or `openssl ca` directory (the source is left as it is)",
    module: "import",
    examples: ["pki import easyrsa /etc/openvpn/easy-rsa/pki --dir /etc/pki/vpn --source-passphrase-file old.pass --passphrase-file new.pass"],
    sub: [
      {
        name: "easyrsa",
        args: "<dir>",
        summary: "import an easy-rsa 3 PKI directory (ca.crt, private/ca.key, index.txt, issued/, revoked/)",
        module: "import",
    audited: true,
        options: IMPORT_OPTIONS(true),
        examples: [
          "pki import easyrsa ~/easy-rsa/pki --dir /etc/pki/vpn --dry-run --source-passphrase-file old.pass",
          "pki import easyrsa ~/easy-rsa/pki --dir /etc/pki/vpn --source-passphrase-file old.pass --passphrase-file new.pass",
        ],
      },
      {
        name: "openssl-ca",
        args: "<dir>",
        summary: "import an `openssl ca` directory (cacert.pem or ca.crt, private/cakey.pem, index.txt, newcerts/ or certs/, crlnumber, crl.pem)",
        module: "import",
    audited: true,
        options: IMPORT_OPTIONS(false),
        examples: ["pki import openssl-ca /etc/ssl/demoCA --dir /etc/pki/legacy --source-passphrase-file old.pass --passphrase-file new.pass"],
      },
    ],
  },
  {
    name: "store",
    summary: "move a CA between a directory and a PostgreSQL database (README \"Shared store: PostgreSQL\")",
    module: "store-migrate",
    examples: ["pki store migrate --from /etc/pki/acme --to postgres://pki@db.acme.lan/pki_acme", "pki --store postgres://pki@db.acme.lan/pki_acme store export --to /srv/backup/pki-acme"],
    sub: [
      {
        name: "migrate",
        summary: "copy a CA directory into an empty PostgreSQL database, all or nothing (the directory is only read)",
        module: "store-migrate",
        options: [
          ["--from <dir>", "the CA directory to copy"],
          ["--to <url>", "the database: postgres://user@host:port/database (the password from PGPASSWORD or ~/.pgpass, never here)"],
        ],
        examples: ["pki store migrate --from /etc/pki/acme --to postgres://pki@db.acme.lan/pki_acme"],
      },
      {
        name: "export",
        summary: "write the CA of the store (--store, PKI_STORE) to a new CA directory that pki and `openssl ca` use as it is",
        module: "store-export",
        audited: true,
        options: [["--to <dir>", "the new CA directory"]],
        examples: ["pki --store postgres://pki@db.acme.lan/pki_acme store export --to /srv/backup/pki-acme-2026-12-02"],
      },
    ],
  },
  {
    name: "revoke",
    args: "[target...]",
    summary: "revoke certificates (serials, certificate files, issued names) and re-sign the CRL, all or nothing",
    module: "revoke",
    audited: true,
    options: [
      SHARED.key,
      ["--reason <reason>", `${REASON_NAMES[0]} (default), ${REASON_NAMES.slice(1).join(", ")}`, REASON_NAMES],
      ["--subject <dn>", "every valid certificate whose subject is this DN (\"CN=a,O=b\", any order) or has this CN (\"CN=a\" or just a)"],
      ["--all-of <name>", "every valid certificate ever recorded under this issued name"],
    ],
    examples: [
      "pki revoke web1 --reason keyCompromise --passphrase-file pass",
      "pki revoke 4A1F...C3 --passphrase-file pass && nginx -s reload",
      "pki revoke agent2 agent5 agent9 --reason cessationOfOperation",
      "pki revoke --subject CN=agent2.agents.example.lan --reason keyCompromise",
      "pki revoke --all-of agent2",
    ],
  },
  {
    name: "crl",
    summary: "write a fresh CRL",
    module: "crl",
    audited: true,
    options: [
      SHARED.key,
      ["--import-parent <file>", "install the parent CA's newer CRL (issuing CA; signature checked against parent.crt); crl-chain.pem follows"],
      ["--out <file>", "output file (default: <dir>/crl.pem)"],
      ["--der", "write DER instead of PEM"],
      SHARED.days,
      ["--if-expiring-within <days>", "re-sign only when the current CRL expires within this many days (for cron)"],
      ["--allow-shrink", "publish even if the CRL drops revoked certificates that have not expired (audited)"],
    ],
    examples: [
      "pki crl --passphrase-file pass",
      "pki crl --if-expiring-within 2 --passphrase-file pass   # daily from cron or a systemd timer",
      "pki -d issuing crl --import-parent root-crl.pem          # the root's fresh CRL, carried from the offline machine",
    ],
  },
  {
    name: "bundle",
    summary: "write ca-clients.crt, the file nginx loads with ssl_client_certificate",
    module: "bundle",
    audited: true,
    options: [
      ["--out <file>", "output file (default: <dir>/ca-clients.crt)"],
      ["--include-issued [profile]", "also append the issued, unexpired, unrevoked certificates (of that profile); remembered", "profiles"],
      ["--no-include-issued", "the CA certificate only (and remember that)"],
    ],
    examples: ["pki bundle                           # as last time (pki.json remembers --include-issued)", "pki bundle --include-issued client", "pki bundle --no-include-issued"],
  },
  {
    name: "list",
    summary: "list issued certificates",
    module: "list",
    options: [
      ["--status <status>", "valid, revoked, expired or all (default all)", LIST_STATUSES],
      ["--expiring <days>", "only certificates that expire within this many days"],
      ["--profile <name>", "only certificates of this profile", "profiles"],
      ["--name <name>", "only certificates recorded under this issued name (all of them: its history)"],
      ["--format <format>", "table (default), serial or dn: one value a line", LIST_FORMATS],
    ],
    examples: ["pki list --status valid", "pki list --expiring 30 --json", "pki list --status valid --profile client --format dn > allowed-dns.txt"],
  },
  {
    name: "show",
    args: "<target>",
    summary: "show a certificate, CSR or CRL (file, serial or issued name)",
    module: "show",
    examples: ["pki show web1", "pki show agent.csr", "pki show crl.pem --json"],
  },
  {
    name: "verify",
    args: "<cert>",
    summary: "check a certificate: chain to the CA, validity, revocation, purpose",
    module: "verify",
    exit1: "the certificate failed a check",
    options: [["--purpose <purpose>", "client, server or code-signing", PURPOSES]],
    examples: ["pki verify issued/alice.crt --purpose client", "pki verify web1 --purpose server --json"],
  },
  {
    name: "doctor",
    summary: "check the CA's health (CRL freshness, expiry, key modes, index)",
    module: "doctor",
    audited: true,
    exit1: "something needs action",
    options: [
      SHARED.key,
      ["--repair", "fix what is safe to fix (orphan certificates, half lines, crlnumber, lost revocations, stale lock)"],
      ["--break-lock", "remove a lock left by a process on another host (or a stray .lock symlink)"],
    ],
    examples: ["pki doctor", "pki doctor --json", "pki doctor --repair"],
  },
  {
    name: "status",
    summary: "everything that expires (CAs, CRLs, responder, certificates) in one table; Prometheus metrics",
    module: "status",
    exit1: "with --fail-within: something expires within the window",
    options: [
      ["--fail-within <days>", "exit 1 (EXPIRING) when a CA or CRL, or a valid certificate, expires within this many days"],
      ["--metrics <file>", "also write a Prometheus textfile (node_exporter textfile collector), atomically"],
    ],
    examples: [
      "pki status",
      "pki status --fail-within 14 --json",
      "pki status --metrics /var/lib/prometheus/node-exporter/pki.prom   # from a systemd timer",
    ],
  },
  {
    name: "renew",
    args: "[target]",
    summary: "issue a new certificate for the same subject, names and profile",
    module: "renew",
    audited: true,
    options: [
      SHARED.key,
      ["--rekey", "make a new key (issued names only)"],
      ["--keep-old", "do not revoke the old certificate"],
      SHARED.days,
      ["--key-passphrase-file <file>", "with --rekey: encrypt the new key with this passphrase"],
      ["--due <days>", "instead of a target: renew every issued name whose certificate expires within this many days (for a timer)"],
    ],
    examples: ["pki renew web1 --passphrase-file pass", "pki renew alice --rekey --passphrase-file pass", "pki renew --due 30 --passphrase-file pass   # daily from pki-renew.timer"],
  },
  {
    name: "serve",
    summary: "run the revocation status server: OCSP, CRL and CA certificate over HTTP (until SIGTERM)",
    module: "serve",
    options: [
      ["--listen <host:port>", "address to listen on (default 127.0.0.1:8080)"],
      ["--next-update <minutes>", "nextUpdate of OCSP responses, in minutes after thisUpdate (default 5)"],
      ["--log-json", "one JSON line per request on stderr"],
      ["--ready-file <file>", "write {pid, url} here once listening (scripts wait on it); removed on exit"],
    ],
    examples: [
      "pki serve --listen 127.0.0.1:8080 --passphrase-file /etc/pki/pass   # the passphrase only to issue its responder certificate",
      "pki serve --listen 0.0.0.0:80 --log-json",
      "openssl ocsp -issuer pki/ca.crt -cert agent.crt -url http://127.0.0.1:8080/ocsp -CAfile pki/ca.crt",
    ],
  },
  {
    name: "nginx-config",
    summary: "print an nginx server block for mutual TLS with this CA",
    module: "nginx-config",
    options: [
      ["--server-name <name>", "server_name (default _)"],
      ["--upstream <url>", "proxy_pass target (default http://127.0.0.1:8080)"],
      ["--listen <addr>", "listen address (default 443)"],
      ["--cert <file>", "server certificate (default: issued/<server-name>.chain.crt)"],
      ["--key <file>", "server key"],
      ["--verify <mode>", "on (default) or optional", VERIFY_MODES],
      ["--snippet", "print only the client-auth block (headers + 401), to include in a location of an existing server"],
      ["--ocsp [url]", "ask pki serve about each client certificate (ssl_ocsp leaf): revocations apply without a reload (default URL: the CA's --ocsp-url)"],
      ["--allow-list [profile]", "only certificates listed in <dir>/nginx-allow.map (kept current by pki from now on) may connect; of that profile only", "profiles"],
    ],
    examples: [
      "pki nginx-config --server-name web1.example.lan --allow-list client > /etc/nginx/conf.d/app.conf",
      "pki nginx-config --server-name web1.example.lan --upstream http://127.0.0.1:8080 > /etc/nginx/conf.d/app.conf",
      "pki nginx-config --server-name web1.example.lan --ocsp http://127.0.0.1:8080/ocsp   # with pki serve running",
      "pki nginx-config --cert /etc/ssl/web.crt --key /etc/ssl/web.key --verify optional",
      "pki nginx-config --snippet > /etc/nginx/pki-client-auth.conf   # then: include pki-client-auth.conf; in a location",
    ],
  },
  {
    name: "apache-config",
    summary: "print an Apache httpd virtual host for mutual TLS with this CA",
    module: "apache-config",
    options: [
      ["--server-name <name>", "ServerName"],
      ["--upstream <url>", "ProxyPass target (default http://127.0.0.1:8080)"],
      ["--listen <addr>", "listen address (default 443)"],
      ["--cert <file>", "server certificate"],
      ["--key <file>", "server key"],
      ["--verify <mode>", "on (require, default) or optional", VERIFY_MODES],
      ["--snippet", "print only the client-auth block (headers + Require), to put in an existing virtual host"],
    ],
    examples: ["pki apache-config --server-name web1.example.lan > /etc/apache2/sites-available/app.conf"],
  },
  {
    name: "completion",
    args: "<shell>",
    argChoices: SHELLS,
    summary: "print a shell completion script (bash or zsh)",
    module: "completion",
    examples: ["pki completion bash > /etc/bash_completion.d/pki", "pki completion zsh > \"${fpath[1]}/_pki\""],
  },
];

/** The options every command takes (before or after its name): defined here only. */
export const GLOBAL_OPTIONS: OptionSpec[] = [
  ["-d, --dir <path>", "CA directory (default: $PKI_DIR, else ./pki)", "dir"],
  ["--store <url>", "where the CA lives: postgres://user@host/db, or a directory (default: $PKI_STORE, else --dir); never a password here: PGPASSWORD, ~/.pgpass or PKI_STORE"],
  ["--json", "print exactly one JSON document on stdout"],
  ["--passphrase-file <file>", "CA key passphrase from the first line of a file (also $PKI_PASSPHRASE_FILE, $PKI_PASSPHRASE)"],
  ["-y, --yes", "never prompt (also without a terminal or with CI set)"],
  ["--no-color", "no colours (also NO_COLOR, and when output is not a terminal)"],
  ["-q, --quiet", "nothing on stderr on success (for cron); warnings and errors still appear"],
];

/** commander's attribute name of an option: --passphrase-file is passphraseFile, --no-color is color */
const attributeName = (flags: string): string => /--(?:no-)?([\w-]+)/.exec(flags)![1]!.replace(/-(\w)/g, (_, c: string) => c.toUpperCase());

export const GLOBAL_KEYS = GLOBAL_OPTIONS.map(([flags]) => attributeName(flags)) as Array<keyof GlobalOptions>;

/** What an option's value takes (undefined: anything, or the option takes no value). */
export function optionChoices([flags, , choices]: OptionSpec): Choices | undefined {
  const value = /[<[]([^>\]]+)[>\]]$/.exec(flags)?.[1];
  if (value === undefined) return undefined;
  return choices ?? placeholderChoices(value);
}

/** What the first positional argument takes (undefined: anything, or none). */
export function argChoices(spec: CommandSpec): Choices | undefined {
  if (spec.sub) return spec.sub.map((s) => s.name);
  return spec.argChoices ?? (spec.args === undefined ? undefined : placeholderChoices(spec.args));
}

const placeholderChoices = (placeholder: string): "file" | "dir" | undefined => (/dir/.test(placeholder) ? "dir" : /file|path|csr|cert|target/.test(placeholder) ? "file" : undefined);

function addGlobals(cmd: Command, hidden: boolean): void {
  for (const [flags, desc] of GLOBAL_OPTIONS) {
    const o = new (commander().Option)(flags, desc);
    if (hidden) o.hideHelp();
    cmd.addOption(o);
  }
}

function exitCodesText(spec: CommandSpec): string {
  const one = spec.exit1 ? `${spec.exit1}, or the operation failed` : "the operation failed (bad input, policy refusal, wrong passphrase, CA state)";
  return `\nExamples:\n${spec.examples.map((e) => "  " + e).join("\n")}\n\nExit codes:\n  0  success\n  1  ${one}\n  2  usage error (unknown flag, missing argument or input)\n`;
}

export type Runner = (spec: CommandSpec, cmd: Command, args: string[]) => Promise<void>;

function define(parent: Command, spec: CommandSpec, runner: Runner): void {
  const cmd = parent.command(spec.args ? `${spec.name} ${spec.args}` : spec.name).description(spec.summary);
  for (const [flags, description] of spec.options ?? []) cmd.option(flags, description);
  addGlobals(cmd, false);
  cmd.addHelpText("after", exitCodesText(spec));
  if (spec.sub) {
    for (const s of spec.sub) define(cmd, s, runner);
    return;
  }
  cmd.action(async (...a: unknown[]) => {
    const self = a[a.length - 1] as Command;
    const args = (self.args as string[]).slice();
    await runner(spec, self, args);
  });
}

export const ROOT_DESCRIPTION = "A certificate authority for internal PKI: CA, CSR signing, key pairs, revocation that nginx enforces.";

export const ROOT_HELP_AFTER = `\nExamples:\n  pki init\n  pki issue server web1 --san dns:web1.example.lan\n  pki sign-csr agent.csr --profile ssl --out agent.crt\n  pki revoke agent --reason keyCompromise\n\nExit codes:\n  0  success\n  1  the operation failed\n  2  usage error\n\nRun \`pki <command> --help\` for a command's options and examples.\n`;

/**
 * The program; with `only`, the root and that one command (run.ts, when
 * argv names a command and asks for no help: defining the other ~25
 * commands and their options is start-up time of every call).
 */
export function buildProgram(version: string, runner: Runner, only?: string): Command {
  const program = new (commander().Command)("pki");
  program.description(ROOT_DESCRIPTION).version(version, "-V, --version").showSuggestionAfterError(true).allowExcessArguments(false);
  addGlobals(program, false);
  program.addHelpText("after", ROOT_HELP_AFTER);
  for (const spec of COMMANDS) if (only === undefined || spec.name === only) define(program, spec, runner);
  return program;
}
