#!/usr/bin/env bash
# The side-by-side run for benches/call-load.sh: the same sipp caller and phone, with
# Kamailio's stateful proxy (benches/kamailio/proxy.cfg, 2 UDP workers) in kolokol's place.
#   benches/kamailio-load.sh [CALLS] [RATE]
# Prints sipp's counts and Kamailio's CPU per call (utime+stime of all its processes).
# Kamailio and the sipps run on ports picked free (benches/load-common.sh; proxy.cfg's
# 5070 and 5098 are replaced in a copy); STRICT=1 exits 1 on any failed call.
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${1:-20000}; RATE=${2:-2000}
command -v kamailio >/dev/null || { echo "needs kamailio (apt-get install kamailio)"; exit 1; }
PEER=kamailio . benches/load-common.sh
read -r KAM_PORT PHONE_PORT PROVIDER_PORT PHONE_MP PROVIDER_MP <<<"$(free_ports 1 1 1 4 4)"
CFG=$DIR/proxy.cfg
sed -e "s/127\.0\.0\.1:5070/127.0.0.1:$KAM_PORT/" -e "s/127\.0\.0\.1:5098/127.0.0.1:$PHONE_PORT/" \
    benches/kamailio/proxy.cfg >"$CFG"
trap 'kill $(jobs -p) 2>/dev/null || true; pkill -f "kamailio -f $CFG" || true; [ -n "${KEEP:-}" ] || rm -rf "$DIR"' EXIT
kamailio -f "$CFG" -DD -E -m 256 -M 16 -P "$DIR/kamailio.pid" >"$DIR/kamailio.log" 2>&1 &
SIPP="sipp 127.0.0.1:$KAM_PORT -i 127.0.0.1 -nostdin -buff_size 4194304 -timeout ${SIPP_TIMEOUT:-600}s"
TICKS=$(getconf CLK_TCK)
cpu() { for p in $(pgrep -f "kamailio -f $CFG"); do awk '{print $14+$15}' /proc/$p/stat; done | awk '{s+=$1} END {print s}'; }
for _ in $(seq 1 50); do
    [ -n "$(pgrep -f "kamailio -f $CFG")" ] && ss -uln | grep -q "127.0.0.1:$KAM_PORT " && break
    sleep 0.1
done
cd "$DIR"
$SIPP -sf "$ROOT/tests/sipp/call_uas.xml" -p "$PHONE_PORT" -mp "$PHONE_MP" -m "$CALLS" -recv_timeout 120s -trace_err \
    >"$DIR/uas.log" 2>&1 &
UAS=$!
C0=$(cpu); T0=$(date +%s.%N)
$SIPP -sf "$ROOT/benches/sipp/call_uac_signalling.xml" -s 5550100 -p "$PROVIDER_PORT" -mp "$PROVIDER_MP" -m "$CALLS" -r "$RATE" \
    -l $((RATE * 10 + 100)) -recv_timeout 60s -trace_err >"$DIR/uac.log" 2>&1 || true
T1=$(date +%s.%N); C1=$(cpu)
reap $UAS
OK=$(grep -a "Successful call" "$DIR/uac.log" | tail -1 | awk -F'|' '{print $3}' | tr -d ' ')
FAIL=$(grep -a "Failed call" "$DIR/uac.log" | tail -1 | awk -F'|' '{print $3}' | tr -d ' ')
echo "kamailio: calls=$CALLS rate=$RATE successful=$OK failed=$FAIL wall=$(echo "$T1 - $T0" | bc) s"
echo "kamailio cpu=$(echo "scale=2; ($C1 - $C0) / $TICKS" | bc) s, per call=$(echo "scale=1; ($C1 - $C0) * 1000000 / $TICKS / $CALLS" | bc) us"
grep -a -A1 "Retrans   Timeout" "$DIR/uac.log" | tail -2 || true
strict "$OK" "$FAIL" "$CALLS" calls
finish
