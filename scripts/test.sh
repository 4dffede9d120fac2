#!/usr/bin/env bash
# Runs every kolokol test. Installs the test peers it needs (sipp, sqlite3, sox, baresip, espeak-ng, chromium,
# Node.js/npm for the softphone build and Playwright, PostgreSQL, the aiosmtpd SMTP sink) from Debian's
# packages when they are missing, and schemathesis from PyPI. The CRM tests run on SQLite and on PostgreSQL: a private cluster is
# started by scripts/postgres.sh unless KOLOKOL_TEST_POSTGRES names one.
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v sipp >/dev/null || need+=(sip-tester)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v openssl >/dev/null || need+=(openssl)
command -v sox >/dev/null || need+=(sox)
command -v baresip >/dev/null || need+=(baresip-core)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v chromium >/dev/null || need+=(chromium)
command -v npm >/dev/null || need+=(nodejs npm)
command -v psql >/dev/null || need+=(postgresql)
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || need+=(python3-aiosmtpd)
/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing test peers: ${need[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# schemathesis, the API fuzzer, from PyPI into a virtualenv of its own (tests/api_fuzz.rs).
ST_VENV="$HOME/.cache/kolokol-st"
if [ ! -x "$ST_VENV/bin/st" ]; then
    echo "installing schemathesis into $ST_VENV"
    /usr/bin/python3 -m venv "$ST_VENV"
    "$ST_VENV/bin/pip" install -q 'schemathesis>=4,<5'
fi

# The shared RFC 4475 corpus lives beside the repository.
test -d ../shared/testdata/rfc4475 || { echo "missing ../shared/testdata/rfc4475" >&2; exit 1; }

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --all-targets "$@"
