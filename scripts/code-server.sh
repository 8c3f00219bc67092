#!/usr/bin/env bash
# Installs code-server 4.100.3 (the real VS Code 1.100.3 workbench and extension host, served to a
# browser) from the npm registry, once, into a cache outside the repository; the VS Code
# extension's end-to-end tests (tests/vscode) start it on loopback. Quick when already present.
#
# Why by hand: code-server's postinstall downloads ripgrep from GitHub (not reachable here) and
# stops as root, so the install skips scripts and does its steps with Debian's ripgrep instead.
# The Debian packages it builds against are in scripts/sysdeps.sh. Prints the install folder.
set -euo pipefail
version=4.100.3
prefix="${FERRY_CODE_SERVER_HOME:-${HOME}/.cache/ferry/code-server-${version}}"
entry="${prefix}/node_modules/code-server/out/node/entry.js"
stamp="${prefix}/.installed"
if [ -f "${stamp}" ] && [ -f "${entry}" ]; then
  echo "${prefix}"
  exit 0
fi
for tool in node npm rg; do
  command -v "${tool}" >/dev/null 2>&1 || {
    echo "ferry: code-server needs ${tool}: run scripts/sysdeps.sh as root first" >&2
    exit 1
  }
done
export npm_config_nodedir=/usr   # the nodejs .deb's headers: node-gyp must not download them
export npm_config_yes=true       # one install step calls npx non-interactively
export npm_config_loglevel=error
mkdir -p "${prefix}"
cd "${prefix}"
[ -f package.json ] || echo '{"name":"code-server-local","private":true}' > package.json
npm install --ignore-scripts --no-audit --no-fund "code-server@${version}" >&2
npm rebuild argon2 --foreground-scripts >&2   # its one native dependency
cd node_modules/code-server/lib/vscode         # what code-server's postinstall.sh does
npm install --omit=dev --ignore-scripts --no-audit --no-fund >&2
mkdir -p node_modules/@vscode/ripgrep/bin
cp "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
npm rebuild --foreground-scripts >&2           # ripgrep's postinstall sees bin/ and exits 0
rm -rf node_modules.asar && ln -s node_modules node_modules.asar
(cd bin/remote-cli && ln -sf code-linux.sh code-server)
(cd bin/helpers && ln -sf browser-linux.sh browser.sh)
(cd extensions && npm install --omit=dev --no-audit --no-fund >&2)
node "${entry}" --version >&2
touch "${stamp}"
echo "${prefix}"
