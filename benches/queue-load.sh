#!/usr/bin/env bash
# Queue calls per second: sipp "provider" callers -> trunk -> DID -> queue -> OPS operators
# (one sipp UAS answering for all of them, each operator hanging up at once), on loopback.
# Prints sipp's counts, kolokol's CPU per call and the queue's routing delay (entered ->
# offered, from the queue event log).
#   benches/queue-load.sh [CALLS] [RATE] [OPS] [STRATEGY] [RECORD=false|true]
# Ports are picked free (benches/load-common.sh); KOLOKOL_BIN names the binary (default: the
# release build), STRICT=1 exits 1 on any failed call or operator registration.
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${1:-5000}; RATE=${2:-500}; OPS=${3:-50}; STRATEGY=${4:-longest_idle}; RECORD=${5:-false}
. benches/load-common.sh
MEMBERS=""
for i in $(seq 1 "$OPS"); do
    $BIN user add --login "op$i" --name "Operator $i" --extension $((3000 + i)) --sip-password "bench-op-$i" >/dev/null
    MEMBERS="$MEMBERS{\"operator\":\"op$i\",\"penalty\":0},"
done
start_kolokol
api /api/v1/queues "{\"name\":\"bench\",\"strategy\":\"$STRATEGY\",\"members\":[${MEMBERS%,}],\"ring_timeout_ms\":5000,\"retry_delay_ms\":50}"
api /api/v1/numbers '{"number":"5550300","queue":"bench"}'
cd "$DIR"
REGISTERED=0
for i in $(seq 1 "$OPS"); do
    if $SIPP -sf "$ROOT/tests/sipp/register.xml" -p "$PHONE_PORT" -s $((3000 + i)) -au $((3000 + i)) -ap "bench-op-$i" \
        -key expires 3600 -m 1 >/dev/null 2>&1; then REGISTERED=$((REGISTERED + 1)); fi
    api "/api/v1/operators/op$i/login" ''
done
$SIPP -sf "$ROOT/tests/sipp/call_uas_hangup.xml" -p "$PHONE_PORT" -mp "$PHONE_MP" -d 0 -m "$CALLS" -recv_timeout 120s -trace_err \
    >"$DIR/uas.log" 2>&1 &
UAS=$!
measure start
$SIPP -sf "$ROOT/benches/sipp/queue_caller.xml" -s 5550300 -p "$PROVIDER_PORT" -mp "$PROVIDER_MP" -m "$CALLS" -r "$RATE" \
    -l $((RATE * 10 + 100)) -recv_timeout 60s -trace_err >"$DIR/uac.log" 2>&1 || true
measure stop
kill $UAS 2>/dev/null || true
echo "calls=$CALLS rate=$RATE operators=$OPS (registered $REGISTERED) strategy=$STRATEGY record=$RECORD"
strict "$REGISTERED" 0 "$OPS" "operator registrations"
report
# Overload control: calls refused at the door (503) count as sipp successes; kolokol counts them.
REFUSED=$(curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^kolokol_calls_refused_total\{reason="overload"\}/{print $2}')
ACCEPTED=$(( ${OK:-0} - ${REFUSED:-0} ))
echo "accepted=$ACCEPTED refused=${REFUSED:-0} failed=${FAIL:-0}"
# The queue's events reach the database in batches: wait (bounded) for the last call's.
for _ in $(seq 1 50); do
    [ "$(sqlite3 "$DIR/data/kolokol.db" "SELECT COUNT(*) FROM queue_events WHERE kind = 'completed'")" -ge "$ACCEPTED" ] && break
    sleep 0.1
done
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
finish
