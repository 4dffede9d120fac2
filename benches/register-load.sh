#!/usr/bin/env bash
# Authenticated REGISTER throughput of a release kolokol on loopback, with kolokol's CPU per
# registration from /proc/PID/schedstat.
#   benches/register-load.sh [USERS=1000] [SECONDS=10] [WINDOW=200]
# 1. our load client: USERS distinct AoRs (sipp 3.6 cannot vary the digest user per call);
# 2. sipp, the independent peer: one run per user for 10 users in parallel, each refreshing
#    its own AoR at a fixed rate (-r), bounded by -m.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-1000}; SECS=${2:-10}; WINDOW=${3:-200}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kolokol-target}"
cargo build --release --bin kolokol --example register_load -q
BIN=$CARGO_TARGET_DIR/release/kolokol
WORK=$(mktemp -d); trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
export KOLOKOL_DATA_DIR=$WORK/data KOLOKOL_SIP__UDP=127.0.0.1:25060 KOLOKOL_SIP__TCP=127.0.0.1:25060 \
       KOLOKOL_SIP__TLS= KOLOKOL_HTTP__LISTEN=127.0.0.1:28080 KOLOKOL_HTTP__TLS_LISTEN= KOLOKOL_LOG=warn
(cd "$WORK" && "$BIN" user add --login bench --name Bench --password bench-password --admin >/dev/null)
(cd "$WORK" && exec "$BIN" >"$WORK/log" 2>&1) & PID=$!
for _ in $(seq 100); do curl -sf localhost:28080/healthz >/dev/null && break; sleep 0.1; done
TOKEN=$(cd "$WORK" && "$BIN" token create --user bench)
echo "creating $USERS users..."
seq 30000 $((30000 + USERS - 1)) | xargs -P 4 -I{} curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -d '{"login":"u{}","name":"U {}","extension":"{}","sip_password":"pw-{}","password":"web-pw-{}"}' \
    localhost:28080/api/v1/users
PID_K=$(pgrep -f "^$BIN$" | head -1 || echo $PID)
echo "== load client: $USERS distinct users, ${SECS}s, window $WINDOW"
"$CARGO_TARGET_DIR/release/examples/register_load" --server 127.0.0.1:25060 --users "$USERS" --first 30000 \
    --window "$WINDOW" --seconds "$SECS" --pid "$PID"
echo "registered AoRs per API: $(curl -sf -H "Authorization: Bearer $TOKEN" localhost:28080/api/v1/registrations | grep -o '"aor"' | wc -l)"
echo "== sipp: 10 users x 1 AoR each, -r ${SIPP_RATE:-1000}/s per user, ${SECS}s"
C0=$(awk '{s+=$1} END {print s}' /proc/$PID/task/*/schedstat)
T0=$(date +%s.%N)
for u in $(seq 30000 30009); do
  sipp 127.0.0.1:25060 -sf tests/sipp/register.xml -i 127.0.0.1 -p $((26000 + u - 30000)) -s $u -au $u -ap pw-$u \
       -key expires 3600 -r "${SIPP_RATE:-1000}" -m $(( ${SIPP_RATE:-1000} * SECS )) -buff_size 4194304 -nostdin \
       -timeout $((SECS + 20))s -trace_stat -stf "$WORK/sipp-$u.csv" >/dev/null 2>&1 &
done
wait $(jobs -p | grep -v "^$PID$") 2>/dev/null || true
T1=$(date +%s.%N); C1=$(awk '{s+=$1} END {print s}' /proc/$PID/task/*/schedstat)
OK=0; FAIL=0
for f in "$WORK"/sipp-*.csv; do
  line=$(tail -1 "$f"); hdr=$(head -1 "$f")
  ok=$(python3 -c "import sys; h=sys.argv[1].split(';'); v=sys.argv[2].split(';'); print(v[h.index('SuccessfulCall(C)')], v[h.index('FailedCall(C)')])" "$hdr" "$line")
  OK=$((OK + ${ok% *})); FAIL=$((FAIL + ${ok#* }))
done
python3 -c "import sys; ok,f,t,c=int(sys.argv[1]),int(sys.argv[2]),float(sys.argv[3]),int(sys.argv[4]); print(f'sipp: {ok} ok, {f} failed, {ok/t:.0f} registrations/s over {t:.1f}s, kolokol CPU {c/1e3/max(ok,1):.1f} us per registration')" $OK $FAIL $(echo "$T1 - $T0" | bc) $((C1 - C0))
