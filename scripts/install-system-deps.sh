#!/usr/bin/env bash
# Install the Debian packages the test suite needs (README "Quick start":
# `npm run setup` runs this, then `npm ci`). Installs only what is missing,
# with apt-get, through sudo when not root (sudo asks for your password).
# Then stops the services Debian starts on install (nginx, apache2,
# postgresql): the tests run their own instances on loopback ports.
#
#   scripts/install-system-deps.sh            install what is missing
#   scripts/install-system-deps.sh --dry-run  print what is missing (one package a line), install nothing
#
# Every tool a test runs is listed here (test/cli/fresh-machine.test.ts
# checks that the tests' "is needed for this test" messages name a package
# of this list); a missing tool fails its test naming the package, never skips it.
set -euo pipefail

dry_run=0
[ "${1:-}" = "--dry-run" ] && dry_run=1

# daemons live in /usr/sbin, which is not on a normal user's PATH on Debian
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

need=()
have() {
  case "$1" in
    /*) compgen -G "$1" >/dev/null ;;   # an absolute path (a glob: /usr/lib/postgresql/*/bin/initdb)
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}
# want TOOL PACKAGE: install PACKAGE unless TOOL is there
want() { have "$1" || need+=("$2"); }

want openssl openssl                                  # the reference for every certificate, CSR, CRL
want nginx nginx-light                                # mutual TLS, CRL and OCSP enforcement
want curl curl                                        # the TLS client of the nginx tests
want script bsdutils                                  # pseudo-terminal for the interactive tests
want setpriv util-linux                               # a permission check as root (hostile-input)
want zsh zsh                                          # completion script test
want jq jq                                            # the README's walkthroughs (registration hook)
want git git                                          # .ci/run: the quick start in a clean clone
want systemd-analyze systemd                          # `systemd-analyze verify` of templates/systemd
want /usr/share/easy-rsa/easyrsa easy-rsa             # pki import easyrsa
want apache2 apache2                                  # pki apache-config with a real httpd
want ab apache2-utils                                 # apache2's helper tools
want softhsm2-util softhsm2                           # PKCS#11 token for key custody
want pkcs11-tool opensc                               # PKCS#11 key handling
want g++ g++                                          # pkcs11js, the optional PKCS#11 addon, builds at npm ci
want make make                                        #   (without them npm ci goes on, without PKCS#11)
want python3 python3                                  #   node-gyp runs on python3
want certtool gnutls-bin                              # PKCS#11 URIs, second TLS stack
want go golang-go                                     # cross-checks with Go's crypto/x509
want '/usr/lib/postgresql/*/bin/initdb' postgresql    # shared store (PostgreSQL)

if [ ${#need[@]} -eq 0 ]; then
  [ $dry_run -eq 1 ] || echo "install-system-deps: every package the tests need is installed"
  exit 0
fi
if [ $dry_run -eq 1 ]; then
  printf '%s\n' "${need[@]}"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
  echo "install-system-deps: installing ${need[*]} with sudo apt-get"
else
  echo "install-system-deps: error: these packages are missing and sudo is not available: ${need[*]}; run as root: apt-get install ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

# Debian starts these on install; the tests run their own on loopback ports
for svc in nginx apache2 postgresql; do
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    "${sudo[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
  elif command -v service >/dev/null 2>&1; then
    "${sudo[@]}" service "$svc" stop >/dev/null 2>&1 || true
  fi
done
echo "install-system-deps: installed ${need[*]}"
