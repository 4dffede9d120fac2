# Sourced by the load scripts (call-load.sh, queue-load.sh, media-load.sh, register-load.sh;
# kamailio-load.sh with PEER=kamailio takes only `free_ports`, `strict`, `finish`, `reap`
# and $DIR).
#
# kolokol is $KOLOKOL_BIN when set (e.g. the debug binary, as tests/bench_smoke.rs runs it),
# otherwise the release build, built here; `example NAME` builds a load generator of
# benches/ in the same profile and prints its path. kolokol runs on loopback with its own
# data directory, recording per $RECORD, on ports picked free by `free_ports` (no fixed
# port of kolokol or sipp): SIP_PORT (UDP+TCP), HTTP_PORT, PHONE_PORT (the sipp phone,
# UAS), PROVIDER_PORT (the sipp "provider", UAC, on the trunk), TRUNK_PORT (where the trunk
# sends outbound calls; nobody listens) and PHONE_MP / PROVIDER_MP, the sipp media ports
# (-mp), each with MEDIA_SPAN (default 4) free ports from it (sipp's RTP, RTCP, video; set
# MEDIA_SPAN larger before sourcing when sipp's rtpstream takes a port pair per call).
# kolokol's WebRTC gateway picks its own ports (media.webrtc_port = 0).
#
# Then an `api` helper; `start_kolokol` (after the users are added) with the provider trunk
# (calls from 127.0.0.1:$PROVIDER_PORT); `measure` around the sipp run and `report` of
# sipp's counts and kolokol's CPU per call. With STRICT=1, `report` (and `strict`) mark the
# run failed when a call or registration failed or fewer than asked succeeded, and `finish`
# (each script's last line) then exits 1.

# free_ports SPAN...: for each SPAN a port P on 127.0.0.1 with P .. P+SPAN-1 free for UDP
# and for TCP, the ranges not overlapping, printed on one line. P is even (sipp's RTP on P,
# RTCP on P+1) and drawn at random from 10000-19999: below kolokol's RTP range
# (media.port_min..port_max, 20000-39999), its WebRTC ports (40000 + one per core by
# default) and the kernel's ephemeral ports (32768-60999 here, so no outgoing socket takes
# them meanwhile), and away from tests/common's 61000 and up.
free_ports() {
    python3 - "$@" <<'EOF'
import random, socket, sys

def free(port):
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True

taken, picked = [], []
for span in map(int, sys.argv[1:]):
    for _ in range(2000):
        p = random.randrange(10000, 20000 - span, 2)
        if all(p + span <= a or b <= p for a, b in taken) and all(free(q) for q in range(p, p + span)):
            taken.append((p, p + span))
            picked.append(p)
            break
    else:
        sys.exit(f"free_ports: no {span} free ports in 10000-19999")
print(*picked)
EOF
}

STRICT_FAILED=0
# strict OK FAIL WANTED WHAT: with STRICT=1, marks the run failed unless OK = WANTED and
# FAIL = 0 (empty counts, from a sipp that never ran, fail too).
strict() {
    [ "${STRICT:-0}" = 1 ] || return 0
    if [ "${1:-}" != "$3" ] || [ "${2:-}" != 0 ]; then
        echo "STRICT: $4: ${1:-none} of $3 successful, ${2:-?} failed" >&2
        STRICT_FAILED=1
    fi
}

# The script's last command: exit 1 when `strict` marked the run failed, after sipp's last
# complaints (a port it could not bind, a message it did not expect) and the server log's
# tail (KEEP=1 keeps the whole run directory).
finish() {
    if [ "$STRICT_FAILED" != 0 ]; then
        { find "$DIR" -maxdepth 1 -name '*.log' ! -name '*_errors.log' -exec grep -a -h -E '^[0-9]{4}-[0-9]{2}-[0-9]{2}[[:space:]]' {} + | tail -n 10
          tail -n 10 "$DIR"/*_errors.log "$DIR"/server.log "$DIR"/kamailio.log; } >&2 2>/dev/null || true
        exit 1
    fi
}

# reap PID [SECONDS=10]: waits (bounded) for a sipp to finish its last calls, then stops it.
reap() {
    for _ in $(seq 1 $((${2:-10} * 10))); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/kolokol-target}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$DIR"' EXIT
[ "${PEER:-kolokol}" = kolokol ] || return 0

if [ -n "${KOLOKOL_BIN:-}" ]; then
    BIN=$(realpath -s "$KOLOKOL_BIN")
    PROFILE_DIR=$(dirname "$BIN")
    # A binary of a cargo build (<target>/debug or <target>/release): the load generators
    # come from the same target directory and profile.
    case $(basename "$PROFILE_DIR") in
        debug) PROFILE=dev; CARGO_TARGET_DIR=$(dirname "$PROFILE_DIR") ;;
        release) PROFILE=release; CARGO_TARGET_DIR=$(dirname "$PROFILE_DIR") ;;
        *) PROFILE=release; PROFILE_DIR=$CARGO_TARGET_DIR/release ;;
    esac
    unset KOLOKOL_BIN
else
    cargo build --release -q
    BIN=$CARGO_TARGET_DIR/release/kolokol; PROFILE=release; PROFILE_DIR=$CARGO_TARGET_DIR/release
fi
example() {
    (cd "$ROOT" && cargo build -q --profile "$PROFILE" --workspace --example "$1" >&2) || return 1
    echo "$PROFILE_DIR/examples/$1"
}

read -r SIP_PORT HTTP_PORT PHONE_PORT PROVIDER_PORT TRUNK_PORT PHONE_MP PROVIDER_MP \
    <<<"$(free_ports 1 1 1 1 1 "${MEDIA_SPAN:-4}" "${MEDIA_SPAN:-4}")"
export KOLOKOL_DATA_DIR=$DIR/data KOLOKOL_RECORDINGS_DIR=$DIR/recordings
export KOLOKOL_SIP__UDP=127.0.0.1:$SIP_PORT KOLOKOL_SIP__TCP=127.0.0.1:$SIP_PORT KOLOKOL_SIP__TLS=""
export KOLOKOL_HTTP__LISTEN=127.0.0.1:$HTTP_PORT KOLOKOL_HTTP__TLS_LISTEN="" KOLOKOL_SIP__ADVERTISE=127.0.0.1
export KOLOKOL_MEDIA__WEBRTC_PORT=0
export KOLOKOL_LOG=warn KOLOKOL_CALLS__RECORD=${RECORD:-false}
$BIN user add --login admin2 --name Admin --admin --password bench-admin >/dev/null
SIPP="sipp 127.0.0.1:$SIP_PORT -i 127.0.0.1 -nostdin -buff_size 4194304 -timeout ${SIPP_TIMEOUT:-600}s"
TICKS=$(getconf CLK_TCK)

api() { curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$2" "http://127.0.0.1:$HTTP_PORT$1" >/dev/null; }

start_kolokol() {
    TOKEN=$($BIN token create --user admin2)
    $BIN >"$DIR/server.log" 2>&1 &
    PID=$!
    until curl -sf "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null; do
        kill -0 $PID 2>/dev/null || { echo "kolokol exited:" >&2; tail -n 20 "$DIR/server.log" >&2; exit 1; }
        sleep 0.2
    done
    api /api/v1/trunks "{\"name\":\"provider\",\"address\":\"127.0.0.1:$TRUNK_PORT\",\"inbound_ip\":\"127.0.0.1\",\"inbound_port\":$PROVIDER_PORT}"
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
    strict "$OK" "$FAIL" "$CALLS" calls
}
