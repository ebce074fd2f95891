#!/usr/bin/env bash
# Cross-city against local verification on loopback (issue 18):
#
#   benches/federation.sh             # DURATION=15 s a run
#   DURATION=5 benches/federation.sh  # quick check
#
# 1. builds the release binary (skip with BUILD=0);
# 2. makes an operator key (`federation keygen`), two cities on SQLite, Jinan
#    370100 (node A) and Chengdu 510100 (node B), each with its own data folder,
#    their entries (`federation describe`) signed into one trust list
#    (`federation sign`), and starts both servers on 127.0.0.1;
# 3. registers a Jinan resident with a card and mints a static token;
# 4. wrk (benches/wrk/verify.lua, static token looped) at CONNECTIONS for
#    DURATION seconds: `local` = a Jinan clinic verifies at node A; `cross` = a
#    Chengdu clinic verifies the same Jinan card at node B (one signed round
#    trip B -> A per request, both nodes' access logs written);
# 5. prints both runs and, as the LAST line, one JSON object with the ratios
#    cross/local of throughput, p50/p99 latency and of the servers' CPU time
#    per request (utime + stime of both server processes over the run, from
#    /proc/PID/stat: the "cost per request" of the issue's 2x target).
#
# Both servers share the machine's cores, so `cross` pays for two nodes' work
# on the same CPUs: the ratio is an upper bound of what two machines would see.
# Settings: DURATION=15 CONNECTIONS=32 WRK_THREADS=1 KEEP=1 (keep the work folder).
# Every process started here listens on 127.0.0.1 only and is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DURATION=${DURATION:-15}
CONNECTIONS=${CONNECTIONS:-32}
WRK_THREADS=${WRK_THREADS:-1}
BIN=${BIN:-$ROOT/target/release/healthcard}

if [ "${BUILD:-1}" = 1 ]; then
    cargo build --release --quiet
fi
WORK=$(mktemp -d /tmp/hc-federation-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT

# Two distinct free ports (both sockets open at once, so they differ).
read -r PA PB < <(python3 -c 'import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])')

"$BIN" federation keygen --out "$WORK/operator.jwk" > "$WORK/root.jwk"

# The environment of a node: code name port dir.
env_of() {
    ENVV=(-u HEALTHCARD_DATABASE_URL -u DATABASE_URL -u HEALTHCARD_MASTER_KEY
        HEALTHCARD_ISSUER="$1" HEALTHCARD_ISSUER_NAME="$2"
        HEALTHCARD_PUBLIC_URL="http://127.0.0.1:$3"
        HEALTHCARD_FEDERATION_ROOT_KEY="$WORK/root.jwk"
        HEALTHCARD_TRUST_LIST="$WORK/list.jws"
        HEALTHCARD_TRUST_LIST_REFRESH_SECS=1
        HEALTHCARD_VERIFY_RATE_PER_SEC=1000000
        HEALTHCARD_FEDERATION_PEER_RATE_PER_SEC=1000000
        HEALTHCARD_DATA_DIR="$4")
}
node_env() { # code name port dir COMMAND...
    env_of "$1" "$2" "$3" "$4"
    shift 4
    env "${ENVV[@]}" "$@"
}
A_ENV=(370100 济南市 "$PA" "$WORK/a")
B_ENV=(510100 成都市 "$PB" "$WORK/b")
for n in A B; do
    if [ $n = A ]; then args=("${A_ENV[@]}"); else args=("${B_ENV[@]}"); fi
    node_env "${args[@]}" "$BIN" migrate > /dev/null
    node_env "${args[@]}" "$BIN" federation describe > "$WORK/$n.json"
done
python3 -c "import json,sys; print(json.dumps([json.load(open(f)) for f in sys.argv[1:]]))" \
    "$WORK/A.json" "$WORK/B.json" > "$WORK/entries.json"
"$BIN" federation sign --key "$WORK/operator.jwk" "$WORK/entries.json" > "$WORK/list.jws"
"$BIN" federation show --root "$WORK/root.jwk" "$WORK/list.jws" > /dev/null

# Started as simple commands, so that $! is the server itself (env execs it).
env_of "${A_ENV[@]}"
env "${ENVV[@]}" "$BIN" serve --bind "127.0.0.1:$PA" > "$WORK/a.log" 2>&1 &
PIDS+=($!)
env_of "${B_ENV[@]}"
env "${ENVV[@]}" "$BIN" serve --bind "127.0.0.1:$PB" > "$WORK/b.log" 2>&1 &
PIDS+=($!)
for p in "$PA" "$PB"; do
    for _ in $(seq 100); do
        if curl -sf "http://127.0.0.1:$p/.well-known/healthcard-trust-list" > /dev/null; then break; fi
        sleep 0.1
    done
done

PASSWORD='bench-federation-pass-9'
echo "$PASSWORD" | node_env "${A_ENV[@]}" "$BIN" admin create --username bench > /dev/null
KEY_A=$(node_env "${A_ENV[@]}" "$BIN" clinic create --code JN01 --name 济南医院 --scopes verify | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
KEY_B=$(node_env "${B_ENV[@]}" "$BIN" clinic create --code CD01 --name 成都医院 --scopes verify | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
A="http://127.0.0.1:$PA"
B="http://127.0.0.1:$PB"
ADMIN=$(curl -sf "$A/api/v1/admin/login" -H 'content-type: application/json' \
    -d "{\"username\":\"bench\",\"password\":\"$PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
RES=$(curl -sf "$A/api/v1/residents" -H "authorization: Bearer $ADMIN" -H 'content-type: application/json' \
    -d '{"name":"张三","national_id":"11010519491231002X"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
CARD=$(curl -sf -X POST "$A/api/v1/residents/$RES/cards" -H "authorization: Bearer $ADMIN" | python3 -c 'import json,sys; print(json.load(sys.stdin)["card"]["id"])')
curl -sf "$A/api/v1/cards/$CARD/tokens" -H "authorization: Bearer $ADMIN" -H 'content-type: application/json' \
    -d '{"kind":"static"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' > "$WORK/tokens.txt"

# Both answers valid before measuring.
for pair in "$A $KEY_A" "$B $KEY_B"; do
    set -- $pair
    curl -sf "$1/api/v1/verify" -H "authorization: Bearer $2" -H 'content-type: application/json' \
        -d "{\"token\":\"$(cat "$WORK/tokens.txt")\"}" | grep -q '"valid":true' || { echo "not valid at $1" >&2; exit 1; }
done

# CPU seconds (utime + stime) both servers have used so far.
cpu() {
    local total=0
    for p in "${PIDS[@]}"; do
        read -r -a f < "/proc/$p/stat"
        total=$((total + f[13] + f[14]))
    done
    python3 -c "import os; print($total / os.sysconf('SC_CLK_TCK'))"
}
run() { # name url key
    local before after out
    before=$(cpu)
    out=$(wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "${DURATION}s" -s benches/wrk/verify.lua \
        "$2/api/v1/verify" -- "$WORK/tokens.txt" "$3" cycle "$WRK_THREADS" 2>&1 \
        | grep '^WRKJSON' | sed 's/^WRKJSON //')
    after=$(cpu)
    echo "$1 $out $before $after"
}
LOCAL=$(run local "$A" "$KEY_A")
CROSS=$(run cross "$B" "$KEY_B")
echo "$LOCAL"
echo "$CROSS"
python3 - "$LOCAL" "$CROSS" <<'EOF'
import json, sys
def parse(line):
    name, rest = line.split(" ", 1)
    body, before, after = rest.rsplit(" ", 2)
    d = json.loads(body)
    d["server_cpu_secs"] = round(float(after) - float(before), 2)
    d["server_cpu_us_per_request"] = round(1e6 * d["server_cpu_secs"] / max(d["requests"], 1), 1)
    return d
local = parse(sys.argv[1])
cross = parse(sys.argv[2])
out = {"local": local, "cross": cross}
out["cpu_per_request_ratio_cross_over_local"] = round(
    cross["server_cpu_us_per_request"] / local["server_cpu_us_per_request"], 2)
for k in ("rps", "requests_per_sec"):
    if k in local and k in cross and cross[k]:
        out["throughput_ratio_local_over_cross"] = round(local[k] / cross[k], 2)
for k in ("p50_ms", "p99_ms"):
    if k in local and k in cross and local[k]:
        out[k + "_ratio_cross_over_local"] = round(cross[k] / local[k], 2)
print(json.dumps(out))
# A run in which not every answer was valid measured something else (a
# refusal is cheaper than a resolution): say so and fail.
for name, d in (("local", local), ("cross", cross)):
    if d.get("invalid", 0) or d.get("non200", 0):
        print(f"{name}: {d.get('invalid', 0)} invalid, {d.get('non200', 0)} non-200 answers "
              f"({d.get('reasons')}): the figures do not measure verifications", file=sys.stderr)
        sys.exit(1)
EOF
