# Shared by the regress tests: start the real hvd on a temporary directory
# with an ephemeral TCP port, wait for it, and always clean up by PID.
# Expects HVD and HVCTL in the environment (ctest sets them).
set -euo pipefail
# shellcheck source=../lib/require.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/require.sh"
need_cmd curl python3 sqlite3

: "${HVD:?HVD must point at the hvd binary}"
: "${HVCTL:?HVCTL must point at the hvctl binary}"

T=$(mktemp -d /tmp/hv-regress.XXXXXX)
HVD_PID=
failures=0

cleanup() {
	if [ -n "$HVD_PID" ] && kill -0 "$HVD_PID" 2>/dev/null; then
		kill "$HVD_PID" 2>/dev/null || true
		wait "$HVD_PID" 2>/dev/null || true
	fi
	rm -rf "$T"
}
trap cleanup EXIT

# write_conf [extra lines...]: hvd.conf for this test.
write_conf() {
	{
		echo "state-dir $T/state"
		echo "api-socket $T/hvd.sock"
		echo "api-listen 127.0.0.1:0"
		echo "log-level debug"
		echo "mesh-anchor off"
		for l in "$@"; do echo "$l"; done
	} > "$T/hvd.conf"
}

start_hvd() {
	[ -f "$T/hvd.conf" ] || write_conf
	"$HVD" -d -f "$T/hvd.conf" >> "$T/hvd.log" 2>&1 &
	HVD_PID=$!
	for _ in $(seq 1 100); do
		if curl -sf --unix-socket "$T/hvd.sock" http://localhost/healthz >/dev/null 2>&1; then
			PORT=$(curl -s --unix-socket "$T/hvd.sock" http://localhost/api/v1/status |
				sed -n 's/.*"tcp":"127.0.0.1:\([0-9]*\)".*/\1/p')
			URL="http://127.0.0.1:$PORT"
			export HVCTL_SOCKET="$T/hvd.sock"
			return 0
		fi
		kill -0 "$HVD_PID" 2>/dev/null || { cat "$T/hvd.log"; echo "hvd died at start-up"; exit 1; }
		sleep 0.1
	done
	cat "$T/hvd.log"
	echo "hvd did not become healthy"
	exit 1
}

stop_hvd() {
	kill "$HVD_PID"
	wait "$HVD_PID" || true
	HVD_PID=
}

# sock METHOD PATH [BODY]: prints "STATUS BODY" for a request over the socket.
sock() {
	local out
	out=$(curl -s -o "$T/body" -w '%{http_code}' --unix-socket "$T/hvd.sock" \
		-X "$1" "http://localhost$2" ${3:+-H 'Content-Type: application/json' --data-binary "$3"})
	echo "$out $(cat "$T/body")"
}

# tcp TOKEN METHOD PATH [BODY]
tcp() {
	local tok=$1; shift
	local out
	out=$(curl -s -o "$T/body" -w '%{http_code}' ${tok:+-H "Authorization: Bearer $tok"} \
		-X "$1" "$URL$2" ${3:+-H 'Content-Type: application/json' --data-binary "$3"})
	echo "$out $(cat "$T/body")"
}

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

finish() {
	local rc=0
	if [ -n "$HVD_PID" ]; then
		kill -TERM "$HVD_PID"
		wait "$HVD_PID" || rc=$?
		HVD_PID=
		expect "hvd exits 0 on SIGTERM" "$rc" 0
	fi
	# Sanitizer reports from any hvd this test started land in its log.
	expect "no sanitizer report in hvd's log" \
		"$(grep -cE 'AddressSanitizer|LeakSanitizer|runtime error:' "$T/hvd.log" || true)" 0
	if [ "$failures" -ne 0 ]; then
		echo "--- hvd log"; cat "$T/hvd.log"
		echo "$failures check(s) failed"
		exit 1
	fi
	echo "all checks passed"
}
