#!/usr/bin/env bash
# Queue calls per second: sipp "provider" callers -> trunk -> DID -> queue -> OPS operators
# (one sipp UAS answering for all of them, each operator hanging up at once), on loopback.
# Prints sipp's counts, kolokol's CPU per call and the queue's routing delay (entered ->
# offered, from the queue event log).
#   benches/queue-load.sh [CALLS] [RATE] [OPS] [STRATEGY] [RECORD=false|true]
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${1:-5000}; RATE=${2:-500}; OPS=${3:-50}; STRATEGY=${4:-longest_idle}; RECORD=${5:-false}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/kolokol-target}
cargo build --release -q
BIN=$CARGO_TARGET_DIR/release/kolokol
DIR=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$DIR"' EXIT
export KOLOKOL_DATA_DIR=$DIR/data KOLOKOL_RECORDINGS_DIR=$DIR/recordings
export KOLOKOL_SIP__UDP=127.0.0.1:5090 KOLOKOL_SIP__TCP=127.0.0.1:5090 KOLOKOL_SIP__TLS=""
export KOLOKOL_HTTP__LISTEN=127.0.0.1:8090 KOLOKOL_HTTP__TLS_LISTEN="" KOLOKOL_SIP__ADVERTISE=127.0.0.1
export KOLOKOL_LOG=warn KOLOKOL_CALLS__RECORD=$RECORD
$BIN user add --login admin2 --name Admin --admin --password bench-admin >/dev/null
MEMBERS=""
for i in $(seq 1 "$OPS"); do
    $BIN user add --login "op$i" --name "Operator $i" --extension $((3000 + i)) --sip-password "bench-op-$i" >/dev/null
    MEMBERS="$MEMBERS{\"operator\":\"op$i\",\"penalty\":0},"
done
TOKEN=$($BIN token create --user admin2)
$BIN >"$DIR/server.log" 2>&1 &
PID=$!
until curl -sf http://127.0.0.1:8090/healthz >/dev/null; do sleep 0.2; done
api() { curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$2" "http://127.0.0.1:8090$1" >/dev/null; }
api /api/v1/trunks '{"name":"provider","address":"127.0.0.1:5097","inbound_ip":"127.0.0.1","inbound_port":5099}'
api /api/v1/queues "{\"name\":\"bench\",\"strategy\":\"$STRATEGY\",\"members\":[${MEMBERS%,}],\"ring_timeout_ms\":5000,\"retry_delay_ms\":50}"
api /api/v1/numbers '{"number":"5550300","queue":"bench"}'
cd "$DIR"
SIPP="sipp 127.0.0.1:5090 -i 127.0.0.1 -nostdin -buff_size 4194304 -timeout 600s"
for i in $(seq 1 "$OPS"); do
    $SIPP -sf "$OLDPWD/tests/sipp/register.xml" -p 5098 -s $((3000 + i)) -au $((3000 + i)) -ap "bench-op-$i" -key expires 3600 -m 1 >/dev/null 2>&1
    api "/api/v1/operators/op$i/login" ''
done
$SIPP -sf "$OLDPWD/tests/sipp/call_uas_hangup.xml" -p 5098 -mp 40000 -d 0 -m "$CALLS" -recv_timeout 120s >"$DIR/uas.log" 2>&1 &
UAS=$!
cpu() { awk '{print $14+$15}' /proc/$PID/stat; }
TICKS=$(getconf CLK_TCK)
C0=$(cpu); T0=$(date +%s.%N)
$SIPP -sf "$OLDPWD/benches/sipp/queue_caller.xml" -s 5550300 -p 5099 -mp 42000 -m "$CALLS" -r "$RATE" \
    -l $((RATE * 10 + 100)) -recv_timeout 60s >"$DIR/uac.log" 2>&1 || true
T1=$(date +%s.%N); C1=$(cpu)
kill $UAS 2>/dev/null || true
OK=$(grep -a "Successful call" "$DIR/uac.log" | tail -1 | awk -F'|' '{print $3}' | tr -d ' ')
FAIL=$(grep -a "Failed call" "$DIR/uac.log" | tail -1 | awk -F'|' '{print $3}' | tr -d ' ')
RSS=$(awk '/VmHWM/{print $2}' /proc/$PID/status)
echo "calls=$CALLS rate=$RATE operators=$OPS strategy=$STRATEGY record=$RECORD"
echo "successful=$OK failed=$FAIL wall=$(echo "$T1 - $T0" | bc) s"
echo "kolokol cpu=$(echo "scale=2; ($C1 - $C0) / $TICKS" | bc) s, per call=$(echo "scale=1; ($C1 - $C0) * 1000000 / $TICKS / $CALLS" | bc) us, peak rss=${RSS} kB"
sleep 1
sqlite3 "$DIR/data/kolokol.db" "
  WITH d AS (
    SELECT o.at_ms - e.at_ms AS ms FROM queue_events e
    JOIN queue_events o ON o.call_id = e.call_id AND o.kind = 'offered'
      AND o.id = (SELECT MIN(id) FROM queue_events WHERE call_id = e.call_id AND kind = 'offered')
    WHERE e.kind = 'entered'),
  r AS (SELECT ms, ROW_NUMBER() OVER (ORDER BY ms) AS n, COUNT(*) OVER () AS c FROM d)
  SELECT 'entered->offered ms: offers=' || MAX(c) || ' p50=' || MAX(CASE WHEN n = (c + 1) / 2 THEN ms END)
    || ' p99=' || MAX(CASE WHEN n = (c * 99 + 99) / 100 THEN ms END) || ' max=' || MAX(ms) FROM r;
  SELECT kind || '=' || COUNT(*) FROM queue_events WHERE kind IN ('answered','abandoned','no_answer','completed') GROUP BY kind;"
