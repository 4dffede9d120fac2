# Sourced by the load scripts (call-load.sh, queue-load.sh): a release kolokol on loopback
# (SIP 5090, HTTP 8090) with its own data directory, recording per $RECORD; an `api`
# helper; `start_kolokol` (after the users are added) with the provider trunk (calls from
# 127.0.0.1:5099); `measure` around the sipp run and `report` of sipp's counts and
# kolokol's CPU per call.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/kolokol-target}
cargo build --release -q
BIN=$CARGO_TARGET_DIR/release/kolokol
DIR=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$DIR"' EXIT
export KOLOKOL_DATA_DIR=$DIR/data KOLOKOL_RECORDINGS_DIR=$DIR/recordings
export KOLOKOL_SIP__UDP=127.0.0.1:5090 KOLOKOL_SIP__TCP=127.0.0.1:5090 KOLOKOL_SIP__TLS=""
export KOLOKOL_HTTP__LISTEN=127.0.0.1:8090 KOLOKOL_HTTP__TLS_LISTEN="" KOLOKOL_SIP__ADVERTISE=127.0.0.1
export KOLOKOL_LOG=warn KOLOKOL_CALLS__RECORD=$RECORD
$BIN user add --login admin2 --name Admin --admin --password bench-admin >/dev/null
SIPP="sipp 127.0.0.1:5090 -i 127.0.0.1 -nostdin -buff_size 4194304 -timeout 600s"
TICKS=$(getconf CLK_TCK)

api() { curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$2" "http://127.0.0.1:8090$1" >/dev/null; }

start_kolokol() {
    TOKEN=$($BIN token create --user admin2)
    $BIN >"$DIR/server.log" 2>&1 &
    PID=$!
    until curl -sf http://127.0.0.1:8090/healthz >/dev/null; do sleep 0.2; done
    api /api/v1/trunks '{"name":"provider","address":"127.0.0.1:5097","inbound_ip":"127.0.0.1","inbound_port":5099}'
}

cpu() { awk '{print $14+$15}' /proc/$PID/stat; }

# measure start|stop: kolokol's CPU ticks and the wall clock around the load.
measure() {
    if [ "$1" = start ]; then C0=$(cpu); T0=$(date +%s.%N); else T1=$(date +%s.%N); C1=$(cpu); fi
}

# What sipp's UAC ($DIR/uac.log) counted, and kolokol's CPU and memory, for $CALLS calls.
report() {
    OK=$(grep -a "Successful call" "$DIR/uac.log" | tail -1 | awk -F'|' '{print $3}' | tr -d ' ')
    FAIL=$(grep -a "Failed call" "$DIR/uac.log" | tail -1 | awk -F'|' '{print $3}' | tr -d ' ')
    RSS=$(awk '/VmHWM/{print $2}' /proc/$PID/status)
    echo "successful=$OK failed=$FAIL wall=$(echo "$T1 - $T0" | bc) s"
    echo "kolokol cpu=$(echo "scale=2; ($C1 - $C0) / $TICKS" | bc) s, per call=$(echo "scale=1; ($C1 - $C0) * 1000000 / $TICKS / $CALLS" | bc) us, peak rss=${RSS} kB"
}
