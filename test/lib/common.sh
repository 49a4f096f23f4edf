# SPDX-License-Identifier: AGPL-3.0-or-later
# shellcheck shell=bash
# What every shell test shares (sourced by regress/lib.sh and netns/lib.sh,
# and through netns/lib.sh by e2e/): strict mode, the checks and their
# summary, polling, the scratch directory and the registry of processes to
# kill at exit, and small readers of JSON and logs.  Nothing here starts a
# daemon or touches the network: that is what the two libraries add.
#
#   expect NAME ACTUAL PATTERN     ACTUAL matches the shell glob PATTERN
#   expect_eq NAME ACTUAL WANT     ACTUAL is exactly WANT
#   report_checks [CMD...]         end of a test: CMD shows the logs on failure
#   wait_for SECONDS CMD...        poll CMD; prints elapsed seconds or "timeout"
#   hv_tmpdir TAG                  T=/tmp/hv-TAG.XXXXXX
#   track_pid PID / kill_tracked   processes killed (by PID) at exit
#   stop_hvd                       SIGTERM the hvd in HVD_PID, wait, forget it
#   field EXPR                     Python EXPR over the JSON on stdin (as d)
#   hosts_json                     hvctl --json host list
#   get [CURL ARGS]                HTTP status; the body lands in $T/out
#   sanitizer_reports FILE...      how many lines are sanitizer reports
set -euo pipefail
# shellcheck source=require.sh
. "$(dirname "${BASH_SOURCE[0]}")/require.sh"

failures=0
HVD_PID=
PIDS=()

# --- checks

# expect NAME ACTUAL PATTERN: ACTUAL must match the shell glob PATTERN.
expect() {
	# shellcheck disable=SC2053
	if [[ $2 == $3 ]]; then
		echo "ok   $1"
	else
		echo "FAIL $1"
		echo "     got:  $2"
		echo "     want: $3"
		failures=$((failures + 1))
	fi
}

# expect_eq NAME ACTUAL WANT: exact comparison (WANT may hold [ ] * ?).
expect_eq() {
	if [ "$2" = "$3" ]; then
		echo "ok   $1"
	else
		echo "FAIL $1"
		echo "     got:  $2"
		echo "     want: $3"
		failures=$((failures + 1))
	fi
}

# report_checks [CMD...]: if a check failed, run CMD (it shows the logs),
# say how many failed and exit 1; otherwise say that all passed.  Each
# library's finish() ends with this.
report_checks() {
	if [ "$failures" -ne 0 ]; then
		if [ $# -gt 0 ]; then "$@"; fi
		echo "$failures check(s) failed"
		exit 1
	fi
	echo "all checks passed"
}

# wait_for SECONDS CMD...: poll CMD every 0.1 s; prints elapsed seconds.
wait_for() {
	local limit=$1; shift
	local start end
	start=$(date +%s.%N)
	while ! "$@" >/dev/null 2>&1; do
		end=$(date +%s.%N)
		if (( $(echo "$end - $start > $limit" | bc) )); then
			echo "timeout"
			return 1
		fi
		sleep 0.1
	done
	end=$(date +%s.%N)
	printf '%.1f\n' "$(echo "$end - $start" | bc)"
}

# --- what a test leaves behind: its directory and its processes

# hv_tmpdir TAG: the test's scratch directory, in T.  Not via $(...): T
# must be set in the test's own shell.
hv_tmpdir() {
	T=$(mktemp -d "/tmp/hv-$1.XXXXXX")
}

# track_pid PID: PID is killed at exit.  Only PIDs this test started.
track_pid() {
	PIDS+=("$1")
}

# kill_tracked: SIGTERM every tracked PID, then reap them all.
kill_tracked() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
}

# stop_hvd: SIGTERM the hvd this test started (HVD_PID), wait for it, and
# forget its PID.
stop_hvd() {
	kill "$HVD_PID"
	wait "$HVD_PID" || true
	HVD_PID=
}

# --- readers

# field EXPR: evaluates the Python expression EXPR with d bound to the JSON
# on stdin, and prints it.
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

hosts_json() { "$HVCTL" --json host list; }

# get [CURL ARGS]: prints the HTTP status; the body is in $T/out.
get() { curl -s -o "$T/out" -w '%{http_code}' "$@"; }

# sanitizer_reports FILE...: prints how many lines of the FILEs are
# AddressSanitizer, LeakSanitizer or UBSan reports.  One FILE is read by
# grep itself, so a missing log prints nothing (and fails a check for 0);
# several are concatenated, and a missing one is only complained about.
sanitizer_reports() {
	local re='AddressSanitizer|LeakSanitizer|runtime error:'
	if [ $# -eq 1 ]; then
		grep -cE "$re" "$1" || true
	else
		cat "$@" | grep -cE "$re" || true
	fi
}
