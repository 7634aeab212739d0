#!/usr/bin/env bash
# Installs the PostgreSQL server binaries (Debian package) if missing; starts nothing.
# tests/test_search_postgres.py starts its own throwaway server on a free loopback port.
set -euo pipefail
if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
