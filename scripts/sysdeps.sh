#!/usr/bin/env bash
# Installs the Debian packages ferry's test suites use, once; quick when already present.
set -euo pipefail
need=()
command -v git >/dev/null 2>&1 || need+=(git)
# a real OpenSSH server for the SSH target's tests (started on loopback by the tests themselves)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
# Java for pyspark (the Spark target's tests run real Spark in local mode)
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
# PostgreSQL server binaries: the store tests start a throw-away cluster (initdb + pg_ctl) on
# loopback; no contrib extension is used, and the packaged cluster need not run
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
# Open MPI: mpirun starts the ranks of MpiConfiguration runs, and mpi4py (dev extra) loads its
# libmpi; libopenmpi-dev brings mpicc, which pip needs where it must build mpi4py from source
command -v mpirun.openmpi >/dev/null 2>&1 || need+=(openmpi-bin)
command -v mpicc.openmpi >/dev/null 2>&1 || need+=(libopenmpi-dev)
# Docker environments: the tests start Debian's dockerd themselves (private socket, no bridge,
# no iptables), and ferry makes its default base image from Debian's packages with mmdebstrap
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
# Node.js and npm for the Azure Storage emulator (Azurite) the data tests start on loopback
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "ferry: missing system packages: ${need[*]} (install them with apt-get as root)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
# Azurite (the Azure Storage emulator), once, in a cache outside the repository: the data tests
# and benchmarks start its blob service themselves (tests/data/services.py)
azurite_home="${HOME}/.cache/ferry-tests/azurite"
if [ ! -x "${azurite_home}/node_modules/.bin/azurite-blob" ]; then
  mkdir -p "${azurite_home}"
  npm install --silent --no-audit --no-fund --prefix "${azurite_home}" azurite >/dev/null
fi
# code-server (a real VS Code for the extension's end-to-end tests, scripts/code-server.sh): its
# native modules build with node-gyp against these headers; Debian's ripgrep replaces the one
# @vscode/ripgrep would download; Playwright drives Debian's chromium
need2=()
command -v rg >/dev/null 2>&1 || need2+=(ripgrep)
command -v chromium >/dev/null 2>&1 || need2+=(chromium)
command -v g++ >/dev/null 2>&1 || need2+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need2+=(pkg-config)
[ -f /usr/include/krb5.h ] || [ -f /usr/include/krb5/krb5.h ] || need2+=(libkrb5-dev)
[ -f /usr/include/X11/extensions/XKBfile.h ] || need2+=(libxkbfile-dev)
pkg-config --exists libsecret-1 2>/dev/null || need2+=(libsecret-1-dev)
if [ ${#need2[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "ferry: missing system packages: ${need2[*]} (install them with apt-get as root)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need2[@]}"
fi
