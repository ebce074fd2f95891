#!/usr/bin/env bash
# Load figures for POST /api/v1/verify, in one run on loopback:
#
#   benches/load.sh            # full run (SQLite and PostgreSQL), ~6-8 min on 2 cores
#   QUICK=1 benches/load.sh    # short runs, small population: for checking the script
#
# 1. builds the release binary;
# 2. measures the bare verify floor in this process tree (ring Ed25519 on the
#    Sig_structure of a real token, and the library's token::verify), on one
#    thread and on every core: the "2-core crypto ceiling";
# 3. times a legacy import of IMPORT_ROWS rows into a fresh SQLite database;
# 4. for each database (DBS): a fresh database, one clinic, RESIDENTS residents
#    with cards and links imported from a generated CSV (valid GB 11643 ID
#    numbers), tokens pre-minted with the local key (hidden
#    `healthcard bench-tokens`), the service started, then wrk with
#    benches/wrk/verify.lua at a fixed concurrency for DURATION seconds each:
#      static   static tokens, looped (after a short warm-up)
#      paced    static tokens at 80 % of the static rate (p99 at 80 % load)
#      dynamic  fresh dynamic tokens, each sent once; then a replay pass that
#               resends some of them (every answer must be `replayed`)
#      mix      40 % static, 50 % dynamic, 10 % invalid (bad signature), each once
#    and the server's peak RSS (VmHWM) and verification counters; then the
#    holder's QR images: one holder credential (an administrator made with
#    `healthcard admin create` signs in, registers a resident and issues a
#    card), and wrk with benches/wrk/holder_qr.lua on GET /api/v1/holder/qr.png
#    and /qr.svg for DURATION seconds each (each answer a fresh dynamic token
#    drawn as a QR); the server's CPU time over each run (utime + stime from
#    /proc/PID/stat) divided by the run's wall time is the cores it used, and
#    rate / those cores is the per-core figure; a sample PNG is checked with
#    `healthcard verify --qr`;
# 5. prints a table, and as the LAST line one JSON object with every figure.
#
# Settings (environment): RESIDENTS=100000 DURATION=15 CONNECTIONS=32
# WRK_THREADS=1 IMPORT_ROWS=1000000 (0 skips) DBS="sqlite postgres"
# POOL=16 PG_BIN=/usr/lib/postgresql/15/bin KEEP=1 (keep the work folder)
# PG_DURABLE=1 (default: PostgreSQL with fsync and synchronous_commit on;
# 0 turns both off, like scripts/pg-test-server.sh). QR=0 skips the holder
# QR runs. ALG=ed25519|es256|sm2 (default ed25519): the algorithm of the key
# the tokens are signed with (`keys rotate --alg` before minting; the floor
# in step 2 stays ring Ed25519).
# Everything listens on 127.0.0.1 only; every process started here is
# stopped by its PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    RESIDENTS=${RESIDENTS:-5000}
    DURATION=${DURATION:-3}
    IMPORT_ROWS=${IMPORT_ROWS:-0}
    FLOOR_SECS=${FLOOR_SECS:-0.5}
else
    RESIDENTS=${RESIDENTS:-100000}
    DURATION=${DURATION:-15}
    IMPORT_ROWS=${IMPORT_ROWS:-1000000}
    FLOOR_SECS=${FLOOR_SECS:-3}
fi
CONNECTIONS=${CONNECTIONS:-32}
WRK_THREADS=${WRK_THREADS:-1}
DBS=${DBS:-"sqlite postgres"}
POOL=${POOL:-16}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_DURABLE=${PG_DURABLE:-1}
WARMUP=${WARMUP:-3}
QR=${QR:-1}
CLINIC=LOADBENCH
LUA="$ROOT/benches/wrk/verify.lua"
QR_LUA="$ROOT/benches/wrk/holder_qr.lua"

log() { printf '[load %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- tools
command -v python3 >/dev/null || die "python3 is needed"
command -v curl >/dev/null || die "curl is needed"
if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        log "installing wrk from Debian"
        apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
    fi
    command -v wrk >/dev/null || die "wrk is needed (apt-get install -y wrk)"
fi

# ---------------------------------------------------------------- build
log "building the release binary"
cargo build --release --bin healthcard >&2
BIN="$ROOT/target/release/healthcard"

WORK=$(mktemp -d /tmp/hc-load.XXXXXX)
chmod 755 "$WORK"
SERVER_PID=""
PG_DIR=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ -n "$PG_DIR" ] && [ -f "$PG_DIR/data/postmaster.pid" ]; then
        pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pg_as() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# ---------------------------------------------------------------- population
# CSV for `healthcard import-legacy`: local_patient_id,name,national_id,phone.
# ID numbers: a real region code, a birth date 1930-2019 and a sequence
# number from a bijection of the row number (so all distinct), and the
# ISO 7064 MOD 11-2 check character of GB 11643.
gen_population() { # ROWS SEED > file
    awk -v rows="$1" -v seed="$2" 'BEGIN {
        srand(seed)
        nreg = split("110105 310104 440106 610113 510107 370102 330106 420106 320102 500103", reg, " ")
        split("7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2", w, " ")
        chk = "10X98765432"
        nsur = split("王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 高 林 罗 郑 梁 谢 宋 唐", sur, " ")
        ngiv = split("伟 芳 娜 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀 霞 平 刚 桂 英 华 建 国 玉 兰 文 红", giv, " ")
        # every date from 1930-01-01 to 2019-12-31
        split("31 28 31 30 31 30 31 31 30 31 30 31", mdays, " ")
        nd = 0
        for (y = 1930; y <= 2019; y++) {
            leap = (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
            for (m = 1; m <= 12; m++) {
                dm = mdays[m] + (m == 2 && leap)
                for (d = 1; d <= dm; d++) dates[nd++] = sprintf("%04d%02d%02d", y, m, d)
            }
        }
        M = nreg * nd * 1000     # distinct (region, date, sequence) triples
        P = 1000003              # prime, coprime to M: i -> i*P mod M is a bijection
        print "local_patient_id,name,national_id,phone"
        for (i = 0; i < rows; i++) {
            j = (i * P) % M
            r = j % nreg; j = int(j / nreg)
            dd = j % nd; seq = int(j / nd)
            body = sprintf("%s%s%03d", reg[r + 1], dates[dd], seq)
            s = 0
            for (k = 1; k <= 17; k++) s += substr(body, k, 1) * w[k]
            id = body substr(chk, s % 11 + 1, 1)
            name = sur[int(rand() * nsur) + 1] giv[int(rand() * ngiv) + 1]
            if (rand() < 0.6) name = name giv[int(rand() * ngiv) + 1]
            phone = sprintf("1%d%09d", 3 + int(rand() * 7), int(rand() * 1000000000))
            printf "MRN%08d,%s,%s,%s\n", i + 1, name, id, phone
        }
    }'
}

# ---------------------------------------------------------------- helpers
json_get() { # JSON KEY -> value (numbers and strings)
    python3 -c 'import json,sys; v=json.loads(sys.argv[1]); 
for k in sys.argv[2].split("."): v=v[k]
print(v)' "$1" "$2"
}

# Peak resident set size of a process, in MB.
peak_rss_mb() {
    awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

# Sum of healthcard_verifications_total for an outcome and channel.
metric() { # PORT OUTCOME CHANNEL
    curl -fsS "http://127.0.0.1:$1/metrics" | awk -v o="$2" -v c="$3" '
        /^healthcard_verifications_total/ && index($0, "outcome=\"" o "\"") && index($0, "channel=\"" c "\"") { s += $NF }
        END { printf "%d", s }'
}

# run_wrk NAME TOKENS MODE CHANNEL [RATE] [DURATION] -> prints the WRKJSON object
run_wrk() {
    local name=$1 tokens=$2 mode=$3 channel=$4 rate=${5:-0} dur=${6:-$DURATION}
    local out="$WORK/wrk-$DB-$name.txt"
    wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "${dur}s" --timeout 10s -s "$LUA" \
        "http://127.0.0.1:$PORT/api/v1/verify" -- "$tokens" "$API_KEY" "$mode" "$WRK_THREADS" "$rate" "$channel" \
        >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed ($name)"; }
    local j
    j=$(sed -n 's/^WRKJSON //p' "$out")
    [ -n "$j" ] || { cat "$out" >&2; die "no result from wrk ($name)"; }
    log "$DB $name: $(json_get "$j" rps) req/s, p50 $(json_get "$j" p50_ms) ms, p99 $(json_get "$j" p99_ms) ms, valid $(json_get "$j" valid), invalid $(json_get "$j" invalid) $(json_get "$j" reasons | tr -d ' '), non-200 $(json_get "$j" non200)"
    echo "$j"
}

# CPU seconds (user + system) a process has used so far.
cpu_secs() { # PID
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"
}

# A holder credential (hch_...): an administrator signs in, registers one
# resident born in 2020 (the generated population is born 1930-2019, so the
# ID number is free) and issues a card. Uses PORT and ADMIN_PASS.
holder_credential() {
    local base="http://127.0.0.1:$PORT" session rid
    session=$(json_get "$(curl -fsS -H 'Content-Type: application/json' \
        -d "{\"username\":\"loadbench\",\"password\":\"$ADMIN_PASS\"}" "$base/api/v1/admin/login")" token)
    local id
    id=$(python3 -c 'b = "11010520200101001"; w = [7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,4,2]
print(b + "10X98765432"[sum(int(c) * k for c, k in zip(b, w)) % 11])')
    rid=$(json_get "$(curl -fsS -H "Authorization: Bearer $session" -H 'Content-Type: application/json' \
        -d "{\"name\":\"二维码\",\"national_id\":\"$id\"}" "$base/api/v1/residents")" id)
    json_get "$(curl -fsS -X POST -H "Authorization: Bearer $session" -H 'Content-Type: application/json' \
        -d '{}' "$base/api/v1/residents/$rid/cards")" holder_credential
}

# run_qr FORMAT CREDENTIAL -> prints the WRKJSON object with server_cores added
run_qr() {
    local fmt=$1 cred=$2
    local out="$WORK/wrk-$DB-qr-$fmt.txt" c0 c1 t0 t1
    c0=$(cpu_secs "$SERVER_PID"); t0=$(date +%s.%N)
    wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --timeout 10s -s "$QR_LUA" \
        "http://127.0.0.1:$PORT/api/v1/holder/qr.$fmt" -- "$cred" \
        >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed (qr.$fmt)"; }
    c1=$(cpu_secs "$SERVER_PID"); t1=$(date +%s.%N)
    local j
    j=$(sed -n 's/^WRKJSON //p' "$out")
    [ -n "$j" ] || { cat "$out" >&2; die "no result from wrk (qr.$fmt)"; }
    j=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); c=(float(sys.argv[3])-float(sys.argv[2]))/(float(sys.argv[5])-float(sys.argv[4]))
r["server_cores"]=round(c,2); r["per_core"]=round(r["ok"]/r["seconds"]/max(c,0.01)); print(json.dumps(r))' "$j" "$c0" "$c1" "$t0" "$t1")
    log "$DB qr.$fmt: $(json_get "$j" rps) req/s, p50 $(json_get "$j" p50_ms) ms, p99 $(json_get "$j" p99_ms) ms, ok $(json_get "$j" ok), non-200 $(json_get "$j" non200), server on $(json_get "$j" server_cores) cores: $(json_get "$j" per_core)/s per core"
    echo "$j"
}

# ---------------------------------------------------------------- floor
log "measuring the verification floor (${FLOOR_SECS}s per figure, no server running)"
FLOOR=$("$BIN" bench-tokens --floor "$FLOOR_SECS" --threads "$(nproc)")
log "floor: $FLOOR"
CEILING=$(json_get "$FLOOR" ring_verify_per_sec)

# ---------------------------------------------------------------- population file
log "generating $RESIDENTS residents"
t0=$(date +%s.%N)
gen_population "$RESIDENTS" 42 >"$WORK/population.csv"
GEN_SECS=$(python3 -c "import time; print(round(time.time()-$t0, 2))")
log "population file: $(wc -l <"$WORK/population.csv") lines in ${GEN_SECS}s"

# ---------------------------------------------------------------- import timing (SQLite)
IMPORT_JSON=null
if [ "$IMPORT_ROWS" -gt 0 ]; then
    log "timing a legacy import of $IMPORT_ROWS rows into a fresh SQLite database"
    gen_population "$IMPORT_ROWS" 7 >"$WORK/import.csv"
    export HEALTHCARD_DATA_DIR="$WORK/import-data"
    export HEALTHCARD_DATABASE_URL="$WORK/import-data/healthcard.db"
    "$BIN" migrate >/dev/null   # only serve and migrate make a new data folder
    "$BIN" clinic create --code LEGACY --name "Legacy import" --scopes verify,link >/dev/null
    t0=$(date +%s.%N)
    rep=$("$BIN" import-legacy --clinic LEGACY "$WORK/import.csv")
    secs=$(python3 -c "import time; print(round(time.time()-$t0, 2))")
    log "import: $rep in ${secs}s"
    IMPORT_JSON=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["seconds"]=float(sys.argv[2]); r["rows_per_sec"]=round(r["rows"]/r["seconds"]); print(json.dumps(r))' "$rep" "$secs")
    rm -rf "$WORK/import-data" "$WORK/import.csv"
    unset HEALTHCARD_DATA_DIR HEALTHCARD_DATABASE_URL
fi

# ---------------------------------------------------------------- per database
start_pg() { # uses PG_DIR, set by the caller (this runs in a subshell)
    mkdir -p "$PG_DIR"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$PG_DIR"
    pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --no-locale >"$WORK/initdb.log" 2>&1 \
        || { cat "$WORK/initdb.log" >&2; die "initdb failed"; }
    local port durable
    port=$(free_port)
    if [ "$PG_DURABLE" = 1 ]; then durable=""; else durable="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"; fi
    pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=100 -c shared_buffers=256MB $durable" \
        start >/dev/null || { cat "$PG_DIR/server.log" >&2; die "PostgreSQL did not start"; }
    echo "postgres://postgres@127.0.0.1:$port/postgres"
}

stop_pg() {
    [ -n "$PG_DIR" ] && pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    PG_DIR=""
}

# Mixed file: line k is an invalid (re-signed-looking but corrupted) static
# token when k % 10 == 9, else dynamic for even k, static for odd k.
make_mix() { # STATIC DYNAMIC OUT COUNT
    python3 - "$1" "$2" "$3" "$4" <<'EOF'
import sys
static = [l.strip() for l in open(sys.argv[1]) if l.strip()]
dynamic = [l.strip() for l in open(sys.argv[2]) if l.strip()]
count = int(sys.argv[4])
A = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
def corrupt(t):
    # Change the least significant character of a base45 triple that lies in
    # the signature (the last 64 bytes of the COSE structure) by one: still
    # valid base45 and CBOR, so the server pays the Ed25519 check and answers
    # bad_signature.
    body = t[5:]
    n = len(body) // 3 * 2
    p = 3 * ((n - 20) // 2)
    i = A.index(body[p])
    c = A[i - 1] if i > 0 else A[i + 1]
    return "EHC1:" + body[:p] + c + body[p + 1:]
out = []
di = si = 0
for k in range(count):
    if k % 10 == 9:
        out.append(corrupt(static[si % len(static)])); si += 1
    elif k % 2 == 0:
        out.append(dynamic[di]); di += 1
    else:
        out.append(static[si % len(static)]); si += 1
open(sys.argv[3], "w").write("\n".join(out) + "\n")
EOF
}

declare -A RESULT
for DB in $DBS; do
    log "=== $DB ==="
    export HEALTHCARD_DATA_DIR="$WORK/data-$DB"
    case $DB in
        sqlite) export HEALTHCARD_DATABASE_URL="$WORK/data-$DB/healthcard.db" ;;
        postgres) PG_DIR="$WORK/pg"; HEALTHCARD_DATABASE_URL="$(start_pg)"; export HEALTHCARD_DATABASE_URL ;;
        *) die "unknown database $DB" ;;
    esac
    PORT=$(free_port)
    export HEALTHCARD_BIND="127.0.0.1:$PORT"
    export HEALTHCARD_VERIFY_RATE_PER_SEC=10000000
    export HEALTHCARD_HOLDER_RATE_PER_MIN=1000000000
    export HEALTHCARD_DB_POOL_SIZE=$POOL
    export RUST_LOG=warn

    "$BIN" migrate >/dev/null   # only serve and migrate make a new data folder
    API_KEY=$(json_get "$("$BIN" clinic create --code "$CLINIC" --name "Load bench" --scopes verify,link)" api_key)
    ADMIN_PASS=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
    echo "$ADMIN_PASS" | "$BIN" admin create --username loadbench >/dev/null
    t0=$(date +%s.%N)
    rep=$("$BIN" import-legacy --clinic "$CLINIC" "$WORK/population.csv")
    pop_secs=$(python3 -c "import time; print(round(time.time()-$t0, 2))")
    log "$DB population import: $rep in ${pop_secs}s"
    if [ "$DB" = postgres ]; then
        # Measure the service, not the bulk load's aftermath: without this the
        # first runs share the disk with the checkpoint that writes the
        # imported pages, and plan before autovacuum has analysed the tables.
        PGCONNECT_TIMEOUT=10 "$PG_BIN/psql" -X -q "$HEALTHCARD_DATABASE_URL" -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
    fi
    cards=$(json_get "$rep" cards_issued)
    [ "$cards" -ge "$RESIDENTS" ] || die "only $cards cards issued for $RESIDENTS residents"

    if [ "${ALG:-ed25519}" != ed25519 ]; then
        "$BIN" keys rotate --alg "$ALG" >/dev/null
    fi
    STATIC="$WORK/static-$DB.txt"
    "$BIN" bench-tokens --kind static --count "$RESIDENTS" >"$STATIC"

    "$BIN" serve >"$WORK/server-$DB.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server-$DB.log" >&2; die "the server exited"; }
        sleep 0.1
    done
    curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null || die "the server is not ready"
    RSS_IDLE=$(peak_rss_mb "$SERVER_PID")

    run_wrk warmup "$STATIC" cycle window 0 "$WARMUP" >/dev/null
    S=$(run_wrk static "$STATIC" cycle window)
    S_RPS=$(json_get "$S" rps)

    TARGET=$(python3 -c "print(int($S_RPS * 0.8))")
    P=$(run_wrk paced "$STATIC" cycle window "$TARGET")

    # Enough fresh dynamic tokens for the run at 1.6x the static rate: a
    # thread that runs out stops (reported as threads_exhausted).
    NDYN=$(python3 -c "print(int($S_RPS * $DURATION * 1.6) + 1000)")
    DYN="$WORK/dynamic-$DB.txt"
    "$BIN" bench-tokens --kind dynamic --count "$NDYN" >"$DYN"
    srv_valid0=$(metric "$PORT" valid app)
    D=$(run_wrk dynamic "$DYN" once app)
    srv_valid=$(( $(metric "$PORT" valid app) - srv_valid0 ))
    srv_replayed=$(metric "$PORT" replayed app)
    # Replay pass: each thread resends the first tokens of its share (all of
    # which were answered in the dynamic run); every answer must be `replayed`.
    d_valid=$(json_get "$D" valid)
    NREP=$(python3 -c "print(max(0, min(20000, int($d_valid * 0.9) - $CONNECTIONS)) // $WRK_THREADS * $WRK_THREADS)")
    head -n "$NREP" "$DYN" >"$WORK/replay-$DB.txt"
    R=$(run_wrk replay "$WORK/replay-$DB.txt" once doctor 0 "$(( DURATION < 5 ? DURATION : 5 ))")

    NMIX=$(python3 -c "print(int($S_RPS * $DURATION * 1.6) + 1000)")
    "$BIN" bench-tokens --kind dynamic --count "$(( NMIX / 2 + 10 ))" >"$WORK/mixdyn-$DB.txt"
    make_mix "$STATIC" "$WORK/mixdyn-$DB.txt" "$WORK/mix-$DB.txt" "$NMIX"
    X=$(run_wrk mix "$WORK/mix-$DB.txt" once kiosk)

    QP=null; QS=null
    if [ "$QR" = 1 ]; then
        HOLDER=$(holder_credential)
        QP=$(run_qr png "$HOLDER")
        QS=$(run_qr svg "$HOLDER")
        curl -fsS -H "Authorization: Bearer $HOLDER" "http://127.0.0.1:$PORT/api/v1/holder/qr.png" -o "$WORK/sample-$DB.png"
        "$BIN" verify --qr "$WORK/sample-$DB.png" >"$WORK/sample-$DB.json" \
            || { cat "$WORK/sample-$DB.json" >&2; die "the sample QR PNG does not verify"; }
        QP=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); v=json.loads(sys.argv[2]); r["sample_decodes"]=v.get("valid") is True; print(json.dumps(r))' "$QP" "$(cat "$WORK/sample-$DB.json")")
    fi

    RSS_PEAK=$(peak_rss_mb "$SERVER_PID")
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    [ "$DB" = postgres ] && stop_pg

    RESULT[$DB]=$(python3 - "$S" "$P" "$D" "$R" "$X" "$RSS_IDLE" "$RSS_PEAK" "$CEILING" "$pop_secs" "$srv_valid" "$srv_replayed" "$RESIDENTS" "$QP" "$QS" <<'EOF'
import json, sys
S, P, D, R, X = (json.loads(a) for a in sys.argv[1:6])
rss_idle, rss_peak, ceiling, pop_secs = map(float, sys.argv[6:10])
srv_valid, srv_replayed, residents = map(int, sys.argv[10:13])
QP, QS = json.loads(sys.argv[13]), json.loads(sys.argv[14])
def qr(r):
    if r is None:
        return None
    keys = ("rps", "p50_ms", "p99_ms", "requests", "ok", "non200", "mean_body_bytes", "server_cores", "per_core", "errors", "sample_decodes")
    return {k: r[k] for k in keys if k in r}
def brief(r):
    return {k: r[k] for k in ("rps", "p50_ms", "p99_ms", "p999_ms", "requests", "valid", "invalid", "non200", "reasons", "errors")}
out = {
    "residents": residents,
    "population_import_seconds": pop_secs,
    "static": dict(brief(S), ratio_to_ceiling=round(S["rps"] / ceiling, 3)),
    "paced_80pct": dict(brief(P), target_rps=int(S["rps"] * 0.8)),
    "dynamic": dict(brief(D), sent=D["sent"], threads_exhausted=D["threads_exhausted"],
                    server_valid=srv_valid, server_replayed=srv_replayed,
                    exactly_once=(D["invalid"] == 0 and D["non200"] == 0 and srv_replayed == 0
                                  and D["valid"] <= srv_valid <= D["sent"]
                                  and R["valid"] == 0 and R["requests"] > 0
                                  and R["reasons"].get("replayed", 0) == R["requests"])),
    "replay_pass": {"requests": R["requests"], "replayed": R["reasons"].get("replayed", 0), "valid": R["valid"]},
    "mix": dict(brief(X), invalid_share=round(X["invalid"] / max(1, X["requests"]), 3)),
    "rss_idle_mb": rss_idle,
    "rss_peak_mb": rss_peak,
    "holder_qr_png": qr(QP),
    "holder_qr_svg": qr(QS),
    # per second over the run (answers 200) and per core the server used
    "qr_png_per_sec": QP and round(QP["ok"] / QP["seconds"]),
    "qr_png_per_core": QP and QP["per_core"],
    "qr_svg_per_sec": QS and round(QS["ok"] / QS["seconds"]),
    "qr_svg_per_core": QS and QS["per_core"],
}
print(json.dumps(out))
EOF
)
    unset HEALTHCARD_DATABASE_URL HEALTHCARD_DATA_DIR
done

# ---------------------------------------------------------------- summary
ALL=$(for db in "${!RESULT[@]}"; do printf '%s\t%s\n' "$db" "${RESULT[$db]}"; done)
python3 - "$FLOOR" "$IMPORT_JSON" "$CONNECTIONS" "$WRK_THREADS" "$DURATION" "$ALL" "$(nproc)" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" <<'EOF'
import json, sys
floor = json.loads(sys.argv[1])
imp = json.loads(sys.argv[2])
conns, wthreads, dur = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
dbs = {}
for line in sys.argv[6].splitlines():
    if line.strip():
        name, j = line.split("\t", 1)
        dbs[name] = json.loads(j)
ceiling = floor["ring_verify_per_sec"]
print("", file=sys.stderr)
print(f"crypto ceiling ({floor['threads']} cores, bare ring Ed25519 verify): {ceiling:,.0f}/s; "
      f"1 core {floor['ring_verify_per_sec_1t']:,.0f}/s; library verify 1 core "
      f"{floor['library_verify_per_sec_1t']:,.0f}/s (cost x{floor['library_over_ring_cost']:.3f} of bare)", file=sys.stderr)
if imp:
    print(f"legacy import: {imp['rows']:,} rows in {imp['seconds']} s ({imp['rows_per_sec']:,}/s) on SQLite", file=sys.stderr)
print(f"wrk: {conns} connections, {wthreads} thread(s), {dur} s per run", file=sys.stderr)
hdr = f"{'db':9} {'run':8} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'valid':>8} {'invalid':>8} {'non200':>6}  note"
print(hdr, file=sys.stderr)
for name, r in dbs.items():
    for run in ("static", "paced_80pct", "dynamic", "mix"):
        x = r[run]
        note = ""
        if run == "static": note = f"{x['ratio_to_ceiling']*100:.0f}% of ceiling"
        if run == "paced_80pct": note = f"target {x['target_rps']}/s"
        if run == "dynamic": note = "exactly once: " + ("yes" if x["exactly_once"] else "NO") + f" (replay pass {r['replay_pass']['replayed']}/{r['replay_pass']['requests']} replayed)"
        if run == "mix": note = f"invalid {x['invalid_share']*100:.1f}% {x['reasons']}"
        print(f"{name:9} {run:8.8} {x['rps']:9.0f} {x['p50_ms']:7.2f} {x['p99_ms']:7.2f} {x['valid']:8} {x['invalid']:8} {x['non200']:6}  {note}", file=sys.stderr)
    for fmt in ("png", "svg"):
        q = r.get(f"holder_qr_{fmt}")
        if q:
            note = f"{q['per_core']}/s per server core ({q['server_cores']} cores), {q['mean_body_bytes']:.0f} B"
            if fmt == "png": note += ", sample decodes: " + ("yes" if q.get("sample_decodes") else "NO")
            print(f"{name:9} {'qr.' + fmt:8} {q['rps']:9.0f} {q['p50_ms']:7.2f} {q['p99_ms']:7.2f} {q['ok']:8} {'':>8} {q['non200']:6}  {note}", file=sys.stderr)
    print(f"{name:9} server RSS idle {r['rss_idle_mb']} MB, peak {r['rss_peak_mb']} MB", file=sys.stderr)
summary = {
    "machine": {"cores": int(sys.argv[7])},
    "commit": sys.argv[8],
    "wrk": {"connections": conns, "threads": wthreads, "seconds": dur},
    "floor": floor,
    "crypto_ceiling_per_sec": ceiling,
    "legacy_import_sqlite": imp,
    "databases": dbs,
}
print(json.dumps(summary, separators=(",", ":")))
EOF
