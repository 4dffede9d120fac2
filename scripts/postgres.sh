#!/usr/bin/env bash
# Prints the URL of a PostgreSQL the tests may create databases in. Starts a private cluster
# (trust auth, 127.0.0.1 only, port $KOLOKOL_PG_PORT or 55432) when none answers there, after
# installing Debian's postgresql package when it is missing.
set -euo pipefail
port="${KOLOKOL_PG_PORT:-55432}"
dir="${KOLOKOL_PG_DIR:-${TMPDIR:-/tmp}/kolokol-pg-$port}"
url="postgres://kolokol@127.0.0.1:$port/postgres"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
if [ -z "$bin" ]; then
    echo "installing postgresql" >&2
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
    bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
fi
if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
    echo "$url"
    exit 0
fi
# initdb refuses to run as root: then the cluster belongs to the postgres user.
as=()
if [ "$(id -u)" -eq 0 ]; then as=(runuser -u postgres --); fi
if [ ! -f "$dir/PG_VERSION" ]; then
    mkdir -p "$dir"
    [ ${#as[@]} -eq 0 ] || chown postgres "$dir"
    "${as[@]}" "$bin/initdb" -D "$dir" -U kolokol --auth=trust -E UTF8 >/dev/null
fi
# Test data is disposable: no fsync.
"${as[@]}" "$bin/pg_ctl" -D "$dir" -l "$dir/log" -w -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null
echo "$url"
