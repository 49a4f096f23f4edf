# SPDX-License-Identifier: AGPL-3.0-or-later
# Shared by the regress tests: start the real hvd on a temporary directory
# with an ephemeral TCP port, wait for it, and always clean up by PID.
# Expects HVD and HVCTL in the environment (ctest sets them).  The checks,
# wait_for, field, get and the rest come from test/lib/common.sh.
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
need_cmd curl python3 sqlite3

: "${HVD:?HVD must point at the hvd binary}"
: "${HVCTL:?HVCTL must point at the hvctl binary}"

hv_tmpdir regress

cleanup() {
	if [ -n "$HVD_PID" ] && kill -0 "$HVD_PID" 2>/dev/null; then
		kill "$HVD_PID" 2>/dev/null || true
		wait "$HVD_PID" 2>/dev/null || true
	fi
	kill_tracked
	rm -rf "$T"
}
trap cleanup EXIT

# write_conf [extra lines...]: hvd.conf for this test.  The TCP API is
# plaintext with tokens from loopback (tls.sh tests TLS) unless a line
# given says otherwise about api-tls.
write_conf() {
	local l tls=
	for l in "$@"; do case $l in api-tls*|api-plaintext*) tls=given ;; esac; done
	{
		echo "state-dir $T/state"
		echo "api-socket $T/hvd.sock"
		echo "api-listen 127.0.0.1:0"
		echo "log-level debug"
		echo "mesh-anchor off"
		for l in "$@"; do echo "$l"; done
		[ -n "$tls" ] || printf 'api-tls off\napi-plaintext-tokens loopback\n'
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

show_hvd_log() {
	echo "--- hvd log"
	cat "$T/hvd.log"
}

# finish: stop hvd (it must exit 0 on SIGTERM), check its log for sanitizer
# reports, and report; on failure the whole hvd log is shown.
finish() {
	local rc=0
	if [ -n "$HVD_PID" ]; then
		kill -TERM "$HVD_PID"
		wait "$HVD_PID" || rc=$?
		HVD_PID=
		expect "hvd exits 0 on SIGTERM" "$rc" 0
	fi
	# Sanitizer reports from any hvd this test started land in its log.
	expect "no sanitizer report in hvd's log" "$(sanitizer_reports "$T/hvd.log")" 0
	report_checks show_hvd_log
}
