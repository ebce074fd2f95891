#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the tests.
#   scripts/pg-test-server.sh start DIR   -> prints postgres://postgres@127.0.0.1:PORT/postgres
#   scripts/pg-test-server.sh stop DIR
#   scripts/pg-test-server.sh clean DIR   -> drops every hc_test_* database (tests make one each)
# Trust authentication, 127.0.0.1 only, unix socket in DIR, fsync off: for tests only.
# initdb refuses to run as root, so the cluster is run as the `postgres` user when we are root.
# Use: export HEALTHCARD_TEST_PG_URL=$(scripts/pg-test-server.sh start /tmp/hc-pg)
set -euo pipefail

# The newest server Debian's packages installed (15 on bookworm), unless PG_BIN is given.
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
    echo "no PostgreSQL server found under /usr/lib/postgresql: run scripts/setup" >&2
    exit 1
fi
cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
    echo "usage: $0 start|stop|clean DIR" >&2
    exit 2
fi

as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Tests create a database each and keep it (a failing test's data can be read
# afterwards); they add up to gigabytes over a day. Dropped on a fresh start
# (they belong to runs before it) and by `clean`.
drop_test_databases() {
    local port
    port=$(cat "$1/port")
    as_pg "$PG_BIN/psql" -h "$1" -p "$port" -U postgres -d postgres -Atq \
        -c "SELECT datname FROM pg_database WHERE datname LIKE 'hc\_test\_%'" |
        while read -r db; do
            as_pg "$PG_BIN/psql" -h "$1" -p "$port" -U postgres -d postgres -q \
                -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
        done
}

free_port() {
    local port
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    echo "no free port found" >&2
    return 1
}

case "$cmd" in
start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ "$(id -u)" = 0 ]; then
        chown postgres:postgres "$dir"
    fi
    if [ -f "$dir/port" ] && as_pg "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        echo "postgres://postgres@127.0.0.1:$(cat "$dir/port")/postgres"
        exit 0
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    port=$(free_port)
    as_pg sh -c "echo $port > '$dir/port'"
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=1000" \
        start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    drop_test_databases "$dir"
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
clean)
    dir=$(cd "$dir" && pwd)
    drop_test_databases "$dir"
    ;;
stop)
    if [ -d "$dir/data" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    fi
    ;;
*)
    echo "usage: $0 start|stop|clean DIR" >&2
    exit 2
    ;;
esac
