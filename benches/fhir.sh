#!/usr/bin/env bash
# $resolve-card against /api/v1/verify, per request, on one server (issue 16:
# the FHIR form should cost at most 1.3x the JSON form).
#
#   benches/fhir.sh                  # SQLite, 20,000 residents, 3 pairs of 10 s runs
#   RESIDENTS=5000 SECS=3 PAIRS=1 benches/fhir.sh      # to check the script
#   BIN=target/debug/healthcard benches/fhir.sh         # a given build, no release build
#
# One release build; a fresh SQLite data folder; one clinic with RESIDENTS
# residents, cards and links imported (`healthcard import-legacy`); static
# tokens minted locally (`healthcard bench-tokens`); the server started with
# the per-key rate limit out of the way; then wrk (benches/wrk/verify.lua, 32
# connections, 1 thread) alternating /api/v1/verify and
# /fhir/Patient/$resolve-card with the same tokens, PAIRS times, after a warm-up
# of each. Prints each run and, last, one JSON line with the rates and the
# ratio of the medians (verify rate / resolve-card rate = cost per request).
set -euo pipefail
cd "$(dirname "$0")/.."
RESIDENTS=${RESIDENTS:-20000}
SECS=${SECS:-10}
PAIRS=${PAIRS:-3}
CONNECTIONS=${CONNECTIONS:-32}
log() { echo "fhir-bench: $*" >&2; }
command -v wrk >/dev/null || apt-get install -y wrk >/dev/null
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet
    BIN=$PWD/target/release/healthcard
fi
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
export HEALTHCARD_DATA_DIR=$WORK/data
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export HEALTHCARD_BIND=127.0.0.1:$PORT HEALTHCARD_VERIFY_RATE_PER_SEC=10000000 RUST_LOG=warn

# local_patient_id,name,national_id,phone with valid GB 11643 check characters.
python3 - "$RESIDENTS" >"$WORK/pop.csv" <<'PY'
import datetime, sys
w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
print("local_patient_id,name,national_id,phone")
start = datetime.date(1940, 1, 1)
for i in range(int(sys.argv[1])):
    body = "370102%s%03d" % ((start + datetime.timedelta(days=i % 25000)).strftime("%Y%m%d"), i // 25000 + 100)
    check = "10X98765432"[sum(int(c) * k for c, k in zip(body, w)) % 11]
    print("MRN%08d,王%s,%s%s,138%08d" % (i, "伟芳娜敏静"[i % 5], body, check, i))
PY
"$BIN" migrate >/dev/null   # only serve and migrate make a new data folder
KEY=$("$BIN" clinic create --code BENCH --name "FHIR bench" --scopes verify,link | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
"$BIN" import-legacy --clinic BENCH "$WORK/pop.csv" >/dev/null
"$BIN" bench-tokens --kind static --count "$RESIDENTS" >"$WORK/tokens.txt"
"$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

run() { # FORM SECONDS -> requests/s (checks every answer was valid)
    local url path out
    if [ "$1" = fhir ]; then path='/fhir/Patient/$resolve-card'; else path=/api/v1/verify; fi
    out=$(wrk -t1 -c"$CONNECTIONS" -d"${2}s" --timeout 10s -s benches/wrk/verify.lua \
        "http://127.0.0.1:$PORT$path" -- "$WORK/tokens.txt" "$KEY" cycle 1 0 window "$1" | grep '^WRKJSON' | cut -c9-)
    python3 -c 'import json,sys; r=json.loads(sys.argv[1])
assert r["non200"] == 0 and r["invalid"] == 0, r
print(r["rps"], r["p99_ms"])' "$out"
}
run api 3 >/dev/null; run fhir 3 >/dev/null
V=(); F=()
for i in $(seq 1 "$PAIRS"); do
    read -r v vp <<<"$(run api "$SECS")"; read -r f fp <<<"$(run fhir "$SECS")"
    log "pair $i: /verify $v req/s (p99 $vp ms), \$resolve-card $f req/s (p99 $fp ms)"
    V+=("$v"); F+=("$f")
done
python3 -c 'import json,statistics,sys
v=[float(x) for x in sys.argv[1].split()]; f=[float(x) for x in sys.argv[2].split()]
print(json.dumps({"verify_rps": v, "resolve_card_rps": f,
  "cost_ratio_of_medians": round(statistics.median(v)/statistics.median(f), 3)}))' "${V[*]}" "${F[*]}"
