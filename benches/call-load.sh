#!/usr/bin/env bash
# Calls per second through kolokol: sipp "provider" (UAC) -> trunk -> DID -> a phone
# registered by sipp (UAS), on loopback. Prints sipp's counts and kolokol's CPU per call.
#   benches/call-load.sh [CALLS] [RATE] [MEDIA=none|rtp] [RECORD=false|true]
# MEDIA=rtp plays sipp's G.711 pcap from the caller and echoes it at the callee, so every
# call carries 7 s of RTP both ways through the relay (and the recorder with RECORD=true).
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${1:-10000}; RATE=${2:-500}; MEDIA=${3:-none}; RECORD=${4:-false}
. benches/load-common.sh
$BIN user add --login bob --name Bob --extension 1002 --sip-password bench-bob-1 >/dev/null
start_kolokol
api /api/v1/numbers '{"number":"5550100","user":"bob"}'
cp /usr/share/sip-tester/g711a.pcap "$DIR/"
cd "$DIR"
$SIPP -sf "$OLDPWD/tests/sipp/register.xml" -p 5098 -s 1002 -au 1002 -ap bench-bob-1 -key expires 3600 -m 1 >/dev/null
if [ "$MEDIA" = rtp ]; then
    UAC="$OLDPWD/tests/sipp/call_uac.xml"; HOLD=7050; ECHO=-rtp_echo
else
    UAC="$OLDPWD/benches/sipp/call_uac_signalling.xml"; HOLD=0; ECHO=""
fi
$SIPP -sf "$OLDPWD/tests/sipp/call_uas.xml" -p 5098 -mp 40000 $ECHO -m "$CALLS" -recv_timeout 120s >"$DIR/uas.log" 2>&1 &
UAS=$!
measure start
$SIPP -sf "$UAC" -s 5550100 -p 5099 -mp 42000 -m "$CALLS" -r "$RATE" -l $((RATE * 10 + 100)) -d $HOLD \
    -recv_timeout 60s -trace_stat -stf "$DIR/uac.csv" >"$DIR/uac.log" 2>&1 || true
measure stop
wait $UAS || true
echo "calls=$CALLS rate=$RATE media=$MEDIA record=$RECORD"
report
grep -a -A1 "Retrans   Timeout" "$DIR/uac.log" | tail -2 || true
