#!/usr/bin/env bash
# Concurrent calls with RTP both ways through kolokol's relay, on loopback.
#   benches/media-load.sh [CONCURRENT=1000] [RECORD=true] [WINDOW_S=30]
# A sipp "provider" (UAC) ramps up to CONCURRENT calls over ~20 s to a DID ringing a phone
# registered by sipp (UAS); both log kolokol's media port of their leg. The RTP generator
# (benches/rtp_load.rs) plays both phones of every call: 50 packets/s of G.711 A-law each
# way, so kolokol relays 100 packets/s per call in and 100 out. Once every call is up and
# after a 3 s warm-up, a WINDOW_S window measures:
#   - RTP lost end to end (sent by one phone, never received by the other) and the one-way
#     time through kolokol, from the generator;
#   - packets in/out/dropped by the relay (kolokol's metrics);
#   - kolokol's CPU (utime+stime) per relayed packet and in % of one core;
#   - memory per call (RSS with all calls up minus RSS before them).
# Each call is held for its ramp-up + WINDOW_S + HOLD_SLACK_S (default 15) s. Ports are
# picked free (benches/load-common.sh); KOLOKOL_BIN names the binary (default: the release
# build); STRICT=1 exits 1 on any failed call, a failed generator or no RTP relayed.
set -euo pipefail
cd "$(dirname "$0")/.."
CONCURRENT=${1:-1000}; RECORD=${2:-true}; WINDOW=${3:-30}
CALLS=$CONCURRENT
. benches/load-common.sh
RTP_LOAD=$(example rtp_load)
$BIN user add --login bob --name Bob --extension 1002 --sip-password bench-bob-1 >/dev/null
export KOLOKOL_MEDIA__PORT_MIN=20000 KOLOKOL_MEDIA__PORT_MAX=39999
start_kolokol
api /api/v1/numbers '{"number":"5550100","user":"bob"}'
cd "$DIR"
$SIPP -sf "$ROOT/tests/sipp/register.xml" -p "$PHONE_PORT" -s 1002 -au 1002 -ap bench-bob-1 -key expires 3600 -m 1 >/dev/null
metric() { curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" | awk -v m="$1" 'index($0, m) == 1 {s += $NF} END {printf "%d", s}'; }
rss() { awk '/VmRSS/{print $2}' /proc/$PID/status; }
RSS0=$(rss)
RATE=$(( CONCURRENT / 20 > 10 ? CONCURRENT / 20 : 10 ))
HOLD_MS=$(( (CONCURRENT / RATE + WINDOW + ${HOLD_SLACK_S:-15}) * 1000 ))
$SIPP -sf "$ROOT/benches/sipp/call_uas_pcma.xml" -p "$PHONE_PORT" -mp "$PHONE_MP" -m "$CALLS" -recv_timeout 300s \
    -trace_err -trace_logs -log_file "$DIR/uas_ports.log" >"$DIR/uas.log" 2>&1 &
$SIPP -sf "$ROOT/benches/sipp/call_uac_media.xml" -s 5550100 -p "$PROVIDER_PORT" -mp "$PROVIDER_MP" -m "$CALLS" -r "$RATE" \
    -l "$CONCURRENT" -d "$HOLD_MS" -recv_timeout 300s -trace_err -trace_logs -log_file "$DIR/uac_ports.log" \
    >"$DIR/uac.log" 2>&1 &
UAC=$!
("$RTP_LOAD" $((2 * CONCURRENT)) 3 "$WINDOW" \
    "$DIR/uac_ports.log" "$DIR/uas_ports.log") >"$DIR/rtp.log" 2>&1 &
RTP=$!
# Wait (bounded) until every call is bridged, then for the generator's warm-up.
for _ in $(seq 1 600); do
    [ "$(metric kolokol_media_bridges)" -ge "$CONCURRENT" ] && break
    sleep 0.2
done
BRIDGES=$(metric kolokol_media_bridges)
if [ "$BRIDGES" -lt "$CONCURRENT" ]; then
    echo "only $BRIDGES of $CONCURRENT calls came up"; tail -5 "$DIR"/uac.log "$DIR"/uas.log "$DIR"/*_errors.log 2>/dev/null
    exit 1
fi
sleep 3.5
RSS1=$(rss)
IN0=$(metric 'kolokol_rtp_packets_total{dir="in"}'); OUT0=$(metric 'kolokol_rtp_packets_total{dir="out"}')
DROP0=$(metric kolokol_rtp_dropped_total)
measure start
RTP_STATUS=0; wait $RTP || RTP_STATUS=$?
measure stop
IN1=$(metric 'kolokol_rtp_packets_total{dir="in"}'); OUT1=$(metric 'kolokol_rtp_packets_total{dir="out"}')
DROP1=$(metric kolokol_rtp_dropped_total)
BRIDGES_END=$(metric kolokol_media_bridges)
wait $UAC || true
IN=$((IN1 - IN0)); OUT=$((OUT1 - OUT0))
CPU=$(echo "scale=3; ($C1 - $C0) / $TICKS" | bc)
WALL=$(echo "$T1 - $T0" | bc)
echo "concurrent=$CONCURRENT (bridged at window start: $BRIDGES, at end: $BRIDGES_END) record=$RECORD window=${WALL}s"
cat "$DIR/rtp.log"
echo "relay: in=$IN out=$OUT dropped_by_relay=$((DROP1 - DROP0)) ($(echo "scale=0; $IN / $WALL" | bc) packets/s in)"
echo "kolokol cpu=${CPU}s = $(echo "scale=1; 100 * $CPU / $WALL" | bc)% of one core, per relayed packet=$(echo "scale=2; $CPU * 1000000 / $IN" | bc) us"
echo "memory per call=$(( (RSS1 - RSS0) / CONCURRENT )) kB (rss before calls ${RSS0} kB, with calls ${RSS1} kB)"
report
RECEIVED=$(sed -n 's/.* received=\([0-9]*\).*/\1/p' "$DIR/rtp.log")
if [ "${STRICT:-0}" = 1 ] && { [ "$RTP_STATUS" != 0 ] || [ "${RECEIVED:-0}" = 0 ] || [ "$OUT" = 0 ]; }; then
    echo "STRICT: the RTP generator exited $RTP_STATUS, received ${RECEIVED:-no} packets; the relay sent $OUT" >&2
    STRICT_FAILED=1
fi
finish
