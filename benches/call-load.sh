#!/usr/bin/env bash
# Calls per second through kolokol: sipp "provider" (UAC) -> trunk -> DID -> a phone
# registered by sipp (UAS), on loopback. Prints sipp's counts and kolokol's CPU per call.
#   benches/call-load.sh [CALLS] [RATE] [MEDIA=none|rtp] [RECORD=false|true]
# MEDIA=rtp streams G.711 both ways with sipp's rtpstream (ordinary UDP sockets; pcap play
# needs raw sockets, which drop under load) for HOLD ms (default 5000) per call, through
# the relay (and the recorder with RECORD=true); kolokol's relayed/dropped packet counters
# are printed after the run.
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${1:-10000}; RATE=${2:-500}; MEDIA=${3:-none}; RECORD=${4:-false}
. benches/load-common.sh
$BIN user add --login bob --name Bob --extension 1002 --sip-password bench-bob-1 >/dev/null
start_kolokol
api /api/v1/numbers '{"number":"5550100","user":"bob"}'
cd "$DIR"
$SIPP -sf "$OLDPWD/tests/sipp/register.xml" -p 5098 -s 1002 -au 1002 -ap bench-bob-1 -key expires 3600 -m 1 >/dev/null
if [ "$MEDIA" = rtp ]; then
    UAC="$OLDPWD/benches/sipp/call_uac_rtpstream.xml"; UAS="$OLDPWD/benches/sipp/call_uas_rtpstream.xml"
    HOLD=${HOLD:-5000}
    sox -n -r 8000 -c 1 -t al tone.al synth 2 sine 440
    sox -n -r 8000 -c 1 -t ul tone.ul synth 2 sine 600
else
    UAC="$OLDPWD/benches/sipp/call_uac_signalling.xml"; UAS="$OLDPWD/tests/sipp/call_uas.xml"; HOLD=0
fi
$SIPP -sf "$UAS" -p 5098 -mp 40000 -m "$CALLS" -recv_timeout 120s >"$DIR/uas.log" 2>&1 &
UAS=$!
measure start
$SIPP -sf "$UAC" -s 5550100 -p 5099 -mp 42000 -m "$CALLS" -r "$RATE" -l $((RATE * 10 + 100)) -d $HOLD \
    -recv_timeout 60s -trace_stat -stf "$DIR/uac.csv" >"$DIR/uac.log" 2>&1 || true
measure stop
wait $UAS || true
echo "calls=$CALLS rate=$RATE media=$MEDIA hold=${HOLD}ms record=$RECORD"
report
curl -s http://127.0.0.1:8090/metrics | grep -E '^kolokol_rtp_(packets|dropped)_total' || true
grep -a -A1 "Retrans   Timeout" "$DIR/uac.log" | tail -2 || true
