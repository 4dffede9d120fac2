#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for a bounded time each, one after another,
# on one core: `fuzz/run.sh [SECONDS] [TARGET...]` (SECONDS defaults to 60).
#
# Each target's corpus grows in fuzz/corpus/<target> (not committed), starting from the
# seeds in fuzz/seeds and, for the SIP targets, the RFC 4475 torture messages when
# ../shared/testdata/rfc4475 exists. A crash, panic, timeout (10 s; 30 s for the CRM
# targets that read phone numbers), leak or OOM (2 GB) leaves its input in
# fuzz/artifacts/<target>/ and makes this script exit 1 once every target has run; keep
# such an input as a regression test in the crate's tests/fuzz_regressions.rs.
# Logs: fuzz/logs/<target>.log.
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Too slow for CI
# on small machines: the regression tests are what CI runs.
set -uo pipefail
# Read whole before it runs (braces to the last line): editing it mid-run is then safe.
{

seconds=60
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
    seconds=$1
    shift
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

all_targets=(
    sip_decode sip_scan sip_grammar sip_service
    sdp_parse rtp_validate rtp_receive_stats rtcp_parse
    digest_credentials digest_answer
    table_query table_page read_csv read_xlsx read_xlsx_parts import_dry_run
)
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=("${all_targets[@]}")

seeds_of() {
    case $1 in
        sip_decode | sip_scan | sip_grammar) echo sip ;;
        sdp_parse) echo sdp ;;
        rtp_validate) echo rtp ;;
        rtcp_parse) echo rtcp ;;
        read_csv) echo csv ;;
        read_xlsx) echo xlsx ;;
        *) echo "$1" ;;
    esac
}

dict_of() {
    case $1 in
        sip_* | digest_*) echo sip ;;
        sdp_parse) echo sdp ;;
        read_xlsx | read_xlsx_parts) echo xlsx ;;
    esac
}

# One build of every target (`cargo fuzz run` then finds them built).
if [[ ${#targets[@]} -eq 1 ]]; then
    cargo +nightly fuzz build "${targets[0]}" || exit 2
else
    cargo +nightly fuzz build || exit 2
fi

# Inputs a target failed on. Slow units (one run over 10 s) are not counted: a loaded
# machine makes them, and an input that is really that slow is a timeout.
found() {
    find "artifacts/$1" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \
        -o -name 'leak-*' \) | wc -l
}

mkdir -p logs
failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    dirs=("corpus/$t")
    seeds="seeds/$(seeds_of "$t")"
    [[ -d $seeds ]] && dirs+=("$seeds")
    rfc4475="$here/../../shared/testdata/rfc4475"
    if [[ $t == sip_decode || $t == sip_scan ]] && [[ -d $rfc4475 ]]; then
        dirs+=("$rfc4475")
    fi
    # phonenumber compiles its patterns' regexes as they are needed (100 kept): under ASan
    # one input can take a few seconds of that, a loaded machine more.
    timeout=10
    [[ $t == table_query || $t == table_page || $t == import_dry_run ]] && timeout=30
    flags=(-max_total_time="$seconds" -jobs=1 -workers=1 -timeout="$timeout" -rss_limit_mb=2048
        -print_final_stats=1)
    dict="dict/$(dict_of "$t").dict"
    [[ -f $dict ]] && flags+=(-dict="$dict")
    before=$(found "$t")
    echo "== $t: ${seconds}s"
    rm -f fuzz-0.log
    cargo +nightly fuzz run "$t" "${dirs[@]}" -- "${flags[@]}" >"logs/$t.log" 2>&1
    rc=$?
    # With -jobs the worker logs to fuzz-0.log; keep it with the target's log.
    [[ -f fuzz-0.log ]] && cat fuzz-0.log >>"logs/$t.log" && rm -f fuzz-0.log
    after=$(found "$t")
    grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units)' "logs/$t.log" | tail -2
    if [[ $rc -ne 0 || $after -gt $before ]]; then
        echo "!! $t found a problem (exit $rc); inputs in fuzz/artifacts/$t, log in fuzz/logs/$t.log"
        failed+=("$t")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "failed: ${failed[*]}"
    exit 1
fi
echo "all ${#targets[@]} targets ran ${seconds}s without a crash"
exit 0
}
