#!/usr/bin/env bash
# Calls per second through kolokol: sipp "provider" (UAC) -> trunk -> DID -> a phone
# registered by sipp (UAS), on loopback. Prints sipp's counts and kolokol's CPU per call.
#   benches/call-load.sh [CALLS] [RATE] [MEDIA=none|rtp] [RECORD=false|true]
# MEDIA=rtp streams G.711 both ways with sipp's rtpstream (ordinary UDP sockets; pcap play
# needs raw sockets, which drop under load) for HOLD ms (default 5000) per call, through
# the relay (and the recorder with RECORD=true); kolokol's relayed/dropped packet counters
# are printed after the run. Ports are picked free (benches/load-common.sh); KOLOKOL_BIN
# names the binary (default: the release build), STRICT=1 exits 1 on any failed call.
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${1:-10000}; RATE=${2:-500}; MEDIA=${3:-none}; RECORD=${4:-false}
if [ "$MEDIA" = rtp ]; then
    HOLD=${HOLD:-5000}
    # rtpstream binds a port pair per call from -mp up: room for the calls up at once.
    MEDIA_SPAN=$(( 2 * RATE * (HOLD / 1000 + 5) + 8 )); [ "$MEDIA_SPAN" -le 4000 ] || MEDIA_SPAN=4000
else
    HOLD=0
fi
. benches/load-common.sh
$BIN user add --login bob --name Bob --extension 1002 --sip-password bench-bob-1 >/dev/null
start_kolokol
api /api/v1/numbers '{"number":"5550100","user":"bob"}'
cd "$DIR"
$SIPP -sf "$ROOT/tests/sipp/register.xml" -p "$PHONE_PORT" -s 1002 -au 1002 -ap bench-bob-1 -key expires 3600 -m 1 >/dev/null
if [ "$MEDIA" = rtp ]; then
    UAC="$ROOT/benches/sipp/call_uac_rtpstream.xml"; UAS="$ROOT/benches/sipp/call_uas_rtpstream.xml"
    sox -n -r 8000 -c 1 -t al tone.al synth 2 sine 440
    sox -n -r 8000 -c 1 -t ul tone.ul synth 2 sine 600
else
    UAC="$ROOT/benches/sipp/call_uac_signalling.xml"; UAS="$ROOT/tests/sipp/call_uas.xml"
fi
$SIPP -sf "$UAS" -p "$PHONE_PORT" -mp "$PHONE_MP" -m "$CALLS" -recv_timeout 120s -trace_err >"$DIR/uas.log" 2>&1 &
UAS=$!
measure start
$SIPP -sf "$UAC" -s 5550100 -p "$PROVIDER_PORT" -mp "$PROVIDER_MP" -m "$CALLS" -r "$RATE" -l $((RATE * 10 + 100)) -d $HOLD \
    -recv_timeout 60s -trace_err -trace_stat -stf "$DIR/uac.csv" >"$DIR/uac.log" 2>&1 || true
measure stop
reap $UAS
echo "calls=$CALLS rate=$RATE media=$MEDIA hold=${HOLD}ms record=$RECORD"
report
curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | grep -E '^kolokol_rtp_(packets|dropped)_total' || true
grep -a -A1 "Retrans   Timeout" "$DIR/uac.log" | tail -2 || true
finish
