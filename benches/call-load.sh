#!/usr/bin/env bash
# Calls per second through kolokol: sipp "provider" (UAC) -> trunk -> DID -> a phone
# registered by sipp (UAS), on loopback. Prints sipp's counts and kolokol's CPU per call.
#   benches/call-load.sh [CALLS] [RATE] [MEDIA=none|rtp] [RECORD=false|true]
# MEDIA=rtp plays sipp's G.711 pcap from the caller and echoes it at the callee, so every
# call carries 7 s of RTP both ways through the relay (and the recorder with RECORD=true).
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${1:-10000}; RATE=${2:-500}; MEDIA=${3:-none}; RECORD=${4:-false}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/kolokol-target}
cargo build --release -q
BIN=$CARGO_TARGET_DIR/release/kolokol
DIR=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$DIR"' EXIT
export KOLOKOL_DATA_DIR=$DIR/data KOLOKOL_RECORDINGS_DIR=$DIR/recordings
export KOLOKOL_SIP__UDP=127.0.0.1:5090 KOLOKOL_SIP__TCP=127.0.0.1:5090 KOLOKOL_SIP__TLS=""
export KOLOKOL_HTTP__LISTEN=127.0.0.1:8090 KOLOKOL_HTTP__TLS_LISTEN="" KOLOKOL_SIP__ADVERTISE=127.0.0.1
export KOLOKOL_LOG=warn KOLOKOL_CALLS__RECORD=$RECORD
$BIN user add --login admin2 --name Admin --admin --password bench-admin >/dev/null
$BIN user add --login bob --name Bob --extension 1002 --sip-password bench-bob-1 >/dev/null
TOKEN=$($BIN token create --user admin2)
$BIN >"$DIR/server.log" 2>&1 &
PID=$!
until curl -sf http://127.0.0.1:8090/healthz >/dev/null; do sleep 0.2; done
api() { curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$2" "http://127.0.0.1:8090$1" >/dev/null; }
api /api/v1/trunks '{"name":"provider","address":"127.0.0.1:5097","inbound_ip":"127.0.0.1","inbound_port":5099}'
api /api/v1/numbers '{"number":"5550100","user":"bob"}'
cp /usr/share/sip-tester/g711a.pcap "$DIR/"
cd "$DIR"
SIPP="sipp 127.0.0.1:5090 -i 127.0.0.1 -nostdin -buff_size 4194304 -timeout 600s"
$SIPP -sf "$OLDPWD/tests/sipp/register.xml" -p 5098 -s 1002 -au 1002 -ap bench-bob-1 -key expires 3600 -m 1 >/dev/null
if [ "$MEDIA" = rtp ]; then
    UAC="$OLDPWD/tests/sipp/call_uac.xml"; HOLD=7050; ECHO=-rtp_echo
else
    UAC="$OLDPWD/benches/sipp/call_uac_signalling.xml"; HOLD=0; ECHO=""
fi
$SIPP -sf "$OLDPWD/tests/sipp/call_uas.xml" -p 5098 -mp 40000 $ECHO -m "$CALLS" -recv_timeout 120s >"$DIR/uas.log" 2>&1 &
UAS=$!
cpu() { awk '{print $14+$15}' /proc/$PID/stat; }
TICKS=$(getconf CLK_TCK)
C0=$(cpu); T0=$(date +%s.%N)
$SIPP -sf "$UAC" -s 5550100 -p 5099 -mp 42000 -m "$CALLS" -r "$RATE" -l $((RATE * 10 + 100)) -d $HOLD \
    -recv_timeout 60s -trace_stat -stf "$DIR/uac.csv" >"$DIR/uac.log" 2>&1 || true
T1=$(date +%s.%N); C1=$(cpu)
wait $UAS || true
OK=$(grep -a "Successful call" "$DIR/uac.log" | tail -1 | awk -F'|' '{print $3}' | tr -d ' ')
FAIL=$(grep -a "Failed call" "$DIR/uac.log" | tail -1 | awk -F'|' '{print $3}' | tr -d ' ')
RSS=$(awk '/VmHWM/{print $2}' /proc/$PID/status)
echo "calls=$CALLS rate=$RATE media=$MEDIA record=$RECORD"
echo "successful=$OK failed=$FAIL wall=$(echo "$T1 - $T0" | bc) s"
echo "kolokol cpu=$(echo "scale=2; ($C1 - $C0) / $TICKS" | bc) s, per call=$(echo "scale=1; ($C1 - $C0) * 1000000 / $TICKS / $CALLS" | bc) us, peak rss=${RSS} kB"
grep -a "Retransmissions\|Unexpected" "$DIR/uac.log" | head -3 || true
