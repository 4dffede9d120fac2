#!/usr/bin/env bash
# Authenticated REGISTER throughput of a release kolokol on loopback, with kolokol's CPU per
# registration from /proc/PID/schedstat.
#   benches/register-load.sh [USERS=1000] [SECONDS=10] [WINDOW=200]
# 1. our load client: USERS distinct AoRs (sipp 3.6 cannot vary the digest user per call);
# 2. sipp, the independent peer: one run per user for 10 users in parallel (USERS >= 10),
#    each refreshing its own AoR at a fixed rate (-r, SIPP_RATE, default 1000), bounded by -m.
# Ports are picked free (benches/load-common.sh); KOLOKOL_BIN names the binary (default: the
# release build); STRICT=1 exits 1 on any failed registration (the load client always does).
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-1000}; SECS=${2:-10}; WINDOW=${3:-200}; SIPP_RATE=${SIPP_RATE:-1000}
[ "$USERS" -ge 10 ] || { echo "USERS must be at least 10 (the sipp phase registers 10 of them)" >&2; exit 2; }
. benches/load-common.sh
REGISTER_LOAD=$(example register_load)
read -r SIPP_BASE <<<"$(free_ports 10)"
start_kolokol
echo "creating $USERS users..."
seq 30000 $((30000 + USERS - 1)) | xargs -P 4 -I{} curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -d '{"login":"u{}","name":"U {}","extension":"{}","sip_password":"pw-{}","password":"web-pw-{}"}' \
    "127.0.0.1:$HTTP_PORT/api/v1/users"
echo "== load client: $USERS distinct users, ${SECS}s, window $WINDOW"
"$REGISTER_LOAD" --server "127.0.0.1:$SIP_PORT" --users "$USERS" --first 30000 \
    --window "$WINDOW" --seconds "$SECS" --pid "$PID"
echo "registered AoRs per API: $(curl -sf -H "Authorization: Bearer $TOKEN" "127.0.0.1:$HTTP_PORT/api/v1/registrations" | grep -o '"aor"' | wc -l)"
echo "== sipp: 10 users x 1 AoR each, -r $SIPP_RATE/s per user, ${SECS}s"
cd "$DIR"
C0=$(awk '{s+=$1} END {print s}' /proc/$PID/task/*/schedstat)
T0=$(date +%s.%N)
SIPPS=()
for u in $(seq 30000 30009); do
  sipp "127.0.0.1:$SIP_PORT" -sf "$ROOT/tests/sipp/register.xml" -i 127.0.0.1 -p $((SIPP_BASE + u - 30000)) -s $u -au $u -ap pw-$u \
       -key expires 3600 -r "$SIPP_RATE" -m $((SIPP_RATE * SECS)) -buff_size 4194304 -nostdin \
       -timeout $((SECS + 20))s -trace_err -trace_stat -stf "$DIR/sipp-$u.csv" >"$DIR/sipp-$u.log" 2>&1 &
  SIPPS+=($!)
done
wait "${SIPPS[@]}" 2>/dev/null || true
T1=$(date +%s.%N); C1=$(awk '{s+=$1} END {print s}' /proc/$PID/task/*/schedstat)
OK=0; FAIL=0
for f in "$DIR"/sipp-*.csv; do
  line=$(tail -1 "$f"); hdr=$(head -1 "$f")
  ok=$(python3 -c "import sys; h=sys.argv[1].split(';'); v=sys.argv[2].split(';'); print(v[h.index('SuccessfulCall(C)')], v[h.index('FailedCall(C)')])" "$hdr" "$line")
  OK=$((OK + ${ok% *})); FAIL=$((FAIL + ${ok#* }))
done
python3 -c "import sys; ok,f,t,c=int(sys.argv[1]),int(sys.argv[2]),float(sys.argv[3]),int(sys.argv[4]); print(f'sipp: successful={ok} failed={f}, {ok/t:.0f} registrations/s over {t:.1f}s, kolokol CPU {c/1e3/max(ok,1):.1f} us per registration')" $OK $FAIL $(echo "$T1 - $T0" | bc) $((C1 - C0))
strict "$OK" "$FAIL" $((10 * SIPP_RATE * SECS)) "sipp registrations"
finish
