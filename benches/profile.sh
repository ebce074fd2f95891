#!/usr/bin/env bash
# Where a verification's CPU goes, per thread: the measurement behind
# docs/performance.md's "µs per verification" figures (item 8).
#
#   benches/profile.sh sqlite|postgres [SECONDS] [perf]
#
# A fresh database with RESIDENTS (20,000) imported residents, the release
# service, a 3 s wrk warm-up and then SECONDS (10) of static tokens with
# benches/wrk/verify.lua at 32 connections (CONNS=N changes that, RATE=N
# paces it, KIND=dynamic sends fresh dynamic tokens, each once). Prints the rate,
# the CPU time per verification of each of the server's thread groups (actix
# workers, access-log threads) and, on PostgreSQL, of all PostgreSQL
# processes together, plus the top statements from pg_stat_statements (calls,
# execution and planning time, plans). With `perf` it also records
# `perf record -a -g` of the whole machine into the work folder, kept then.
# BIN=path runs another build (e.g. an older commit's, for A/B runs).
# KEEP=1 keeps the work folder (server and PostgreSQL logs); PG_EXTRA adds
# PostgreSQL settings, e.g. "-c session_preload_libraries=auto_explain
# -c auto_explain.log_min_duration=5 -c auto_explain.log_analyze=on".
# Everything listens on 127.0.0.1; what it starts is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DB=${1:?usage: benches/profile.sh sqlite|postgres [SECONDS] [perf]}
SECS=${2:-10}
PERF=${3:-}
RATE=${RATE:-0}
KIND=${KIND:-static}
KEEP=${KEEP:-}
RESIDENTS=${RESIDENTS:-20000}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
BIN=${BIN:-}
if [ -z "$BIN" ]; then
    cargo build --release --bin healthcard >&2
    BIN="$ROOT/target/release/healthcard"
fi
LUA="$ROOT/benches/wrk/verify.lua"

W=$(mktemp -d /tmp/hc-profile.XXXXXX)
chmod 755 "$W"
SP=""
PG_UP=""
pg_as() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    if [ -n "$SP" ]; then kill "$SP" 2>/dev/null || true; wait "$SP" 2>/dev/null || true; fi
    if [ -n "$PG_UP" ]; then pg_as "$PG_BIN/pg_ctl" -D "$W/pg" -m fast -w stop >/dev/null 2>&1 || true; fi
    if [ -n "$PERF$KEEP" ]; then echo "kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
# The population generator of benches/load.sh.
source <(sed -n '/^gen_population()/,/^}/p' benches/load.sh)
gen_population "$RESIDENTS" 42 >"$W/population.csv"

export HEALTHCARD_DATA_DIR="$W/data"
case $DB in
    postgres)
        [ "$(id -u)" = 0 ] && chown postgres "$W"
        pg_as "$PG_BIN/initdb" -D "$W/pg" -U postgres -A trust -E UTF8 --no-locale >/dev/null
        PGP=$(free_port)
        pg_as "$PG_BIN/pg_ctl" -D "$W/pg" -l "$W/pg.log" -w -o "-p $PGP -k $W -c listen_addresses=127.0.0.1 \
            -c shared_buffers=256MB -c shared_preload_libraries=pg_stat_statements \
            -c pg_stat_statements.track_planning=on ${PG_EXTRA:-}" start >/dev/null
        PG_UP=1
        export HEALTHCARD_DATABASE_URL="postgres://postgres@127.0.0.1:$PGP/postgres" ;;
    sqlite) export HEALTHCARD_DATABASE_URL="$W/data/healthcard.db" ;;
    *) echo "unknown database $DB" >&2; exit 2 ;;
esac
PORT=$(free_port)
export HEALTHCARD_BIND="127.0.0.1:$PORT" HEALTHCARD_VERIFY_RATE_PER_SEC=10000000 HEALTHCARD_DB_POOL_SIZE=16 RUST_LOG=warn
"$BIN" migrate >/dev/null   # only serve and migrate make a new data folder
KEY=$("$BIN" clinic create --code PROFILE --name Profile --scopes verify,link \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
"$BIN" import-legacy --clinic PROFILE "$W/population.csv" >/dev/null
psql_() { "$PG_BIN/psql" -X -q "$HEALTHCARD_DATABASE_URL" "$@"; }
if [ "$DB" = postgres ]; then
    psql_ -c "VACUUM ANALYZE" -c "CHECKPOINT" -c "CREATE EXTENSION pg_stat_statements" >/dev/null
fi
"$BIN" bench-tokens --kind static --count "$RESIDENTS" >"$W/static.txt"
TOKENS="$W/static.txt" MODE=cycle
if [ "$KIND" = dynamic ]; then
    # Enough for SECS at 15,000/s, each sent once.
    "$BIN" bench-tokens --kind dynamic --count $((SECS * 15000)) >"$W/dynamic.txt"
    TOKENS="$W/dynamic.txt" MODE=once
fi
"$BIN" serve >"$W/server.log" 2>&1 &
SP=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
URL="http://127.0.0.1:$PORT/api/v1/verify"
wrk -t1 -c32 -d3s -s "$LUA" "$URL" -- "$W/static.txt" "$KEY" cycle 1 0 window >/dev/null

# CPU ticks (utime + stime) per thread name, and of all PostgreSQL processes.
threads_cpu() {
    for t in /proc/"$SP"/task/*; do
        printf '%s %s\n' "$(tr ' ' _ <"$t/comm")" "$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "$t/stat")"
    done | awk '{a[$1] += $2} END {for (k in a) print k, a[k]}' | sort
}
pg_cpu() {
    local t=0 p
    [ "$DB" = postgres ] || { echo 0; return; }
    for p in $(pgrep -f "postgres.*$W/pg" ; pgrep -P "$(head -1 "$W/pg/postmaster.pid")"); do
        t=$((t + $(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}
threads_cpu >"$W/t0"
PG0=$(pg_cpu)
[ "$DB" = postgres ] && psql_ -c "SELECT pg_stat_statements_reset()" >/dev/null
PP=""
if [ -n "$PERF" ]; then
    perf record -F 999 -a -g -o "$W/perf.data" -- sleep "$SECS" >/dev/null 2>&1 &
    PP=$!
fi
wrk -t1 -c"${CONNS:-32}" -d"${SECS}s" -s "$LUA" "$URL" -- "$TOKENS" "$KEY" "$MODE" 1 "$RATE" window >"$W/wrk.txt"
threads_cpu >"$W/t1"
PG1=$(pg_cpu)
[ -n "$PP" ] && wait "$PP"

J=$(sed -n 's/^WRKJSON //p' "$W/wrk.txt")
python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print("%.0f verifications/s, p50 %s ms, p99 %s ms, valid %d, non-200 %d" % (j["rps"], j["p50_ms"], j["p99_ms"], j["valid"], j["non200"]))' "$J"
REQ=$(python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["valid"] + j["invalid"])' "$J")
HZ=$(getconf CLK_TCK)
echo "CPU per verification:"
join "$W/t0" "$W/t1" | awk -v r="$REQ" -v hz="$HZ" '{d = ($3 - $2) / hz; if (d > 0) printf "  %-20s %6.1f us\n", $1, d * 1e6 / r}'
if [ "$DB" = postgres ]; then
    awk -v a="$PG0" -v b="$PG1" -v r="$REQ" -v hz="$HZ" 'BEGIN {printf "  %-20s %6.1f us\n", "postgresql (all)", (b - a) / hz * 1e6 / r}'
    psql_ -c "SELECT calls, round(total_exec_time::numeric) AS exec_ms, round(total_plan_time::numeric) AS plan_ms, plans, rows,
        left(regexp_replace(query, '\s+', ' ', 'g'), 80) AS statement
        FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT 8"
fi
