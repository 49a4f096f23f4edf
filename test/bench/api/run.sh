#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
#
# API throughput benchmark: GET /api/v1/networks with 1,000 rows over
# keep-alive, measured with wrk, side by side with nginx serving the very
# same JSON bytes as a static file.  Prints the hvd/nginx requests/s ratio
# (goal >= 0.5 against one nginx worker).  See README.md next to this file.
#
# usage: test/bench/api/run.sh [HVD_BINARY [HVCTL_BINARY]]
#        (defaults: build/release/daemon/hvd, build/release/cli/hvctl)
#
# Environment knobs (defaults in brackets):
#   BENCH_NETWORKS [1000]  rows to create
#   BENCH_THREADS  [1]     wrk -t
#   BENCH_CONNS    [32]    wrk -c
#   BENCH_DURATION [10s]   wrk -d, per measured run
#   BENCH_WARMUP   [2s]    unmeasured wrk run before each measured one
#   NGINX          [/usr/sbin/nginx]
#   BENCH_TLS      [0]     1: both over TLS, with one certificate (openssl,
#                          ECDSA P-256) given to hvd as api-tls-cert/-key
#                          and to nginx as ssl_certificate
#
# Exits non-zero only when something breaks (a server fails to start or
# answers wrongly, the bytes differ, a tool is missing); never on the ratio.

set -euo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../../.." && pwd)
hvd_bin=${1:-$repo/build/release/daemon/hvd}
hvctl_bin=${2:-$repo/build/release/cli/hvctl}
nginx_bin=${NGINX:-/usr/sbin/nginx}
networks=${BENCH_NETWORKS:-1000}
threads=${BENCH_THREADS:-1}
conns=${BENCH_CONNS:-32}
duration=${BENCH_DURATION:-10s}
warmup=${BENCH_WARMUP:-2s}
tls=${BENCH_TLS:-0}
path=/api/v1/networks

die() {
	echo "api bench: FAIL: $*" >&2
	exit 1
}

note() {
	echo "api bench: $*"
}

warn() {
	echo "api bench: WARNING: $*" >&2
}

# --- preflight --------------------------------------------------------------

[[ $# -le 2 ]] || { echo "usage: $0 [HVD_BINARY [HVCTL_BINARY]]" >&2; exit 2; }
for b in hvd_bin hvctl_bin nginx_bin; do
	[[ -x ${!b} ]] || die "${!b}: not an executable (build with: cmake --preset release && cmake --build --preset release)"
	# Absolute, so nothing depends on the caller's cwd.
	printf -v "$b" '%s' "$(readlink -f -- "${!b}")"
done
[[ $tls == 0 || $tls == 1 ]] || die "BENCH_TLS must be 0 or 1"
for t in wrk curl python3 cmp awk $([[ $tls == 1 ]] && echo openssl); do
	command -v "$t" >/dev/null || die "'$t' not found in PATH"
done
[[ $networks =~ ^[1-9][0-9]*$ && $networks -le 99999 ]] ||
	die "BENCH_NETWORKS must be in 1..99999"

# --- temp dir and cleanup -----------------------------------------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hvbench.XXXXXX")
hvd_pid=
nginx_pid=

# Stops one process we started, by its PID: TERM, then KILL after 5s.
# nginx's master takes its workers down on TERM; on KILL they are reaped
# by their parent PID, still never by name.
stop_pid() {
	local pid=$1 i kids

	[[ -n $pid ]] || return 0
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
	kids=$(ps -o pid= --ppid "$pid" 2>/dev/null || true)
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		warn "pid $pid ignored SIGTERM; sending SIGKILL"
		# shellcheck disable=SC2086 # $kids is a list of PIDs
		kill -KILL "$pid" $kids 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?

	trap - EXIT INT TERM
	stop_pid "$nginx_pid"
	stop_pid "$hvd_pid"
	rm -rf -- "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$tmp/www${path%/*}" "$tmp/nginx"
body=$tmp/www$path

show_log() {
	[[ -s $1 ]] || return 0
	echo "---- last lines of $(basename "$1") ----" >&2
	tail -n 20 "$1" >&2
}

free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# --- hvd ------------------------------------------------------------------------

sock=$tmp/hvd.sock
scheme=http
cacert=()
if [[ $tls == 1 ]]; then
	# One certificate for both servers: the same key exchange and signature.
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$tmp/tls.key" -out "$tmp/tls.crt" -subj /CN=bench -days 2 \
	    -addext subjectAltName=IP:127.0.0.1 2>/dev/null || die "openssl could not make a certificate"
	chmod 600 "$tmp/tls.key"
	scheme=https
	cacert=(--cacert "$tmp/tls.crt")
	listen_tls="api-tls on
api-tls-cert $tmp/tls.crt
api-tls-key $tmp/tls.key"
else
	# Plaintext, as nginx serves it here; tokens from loopback only.
	listen_tls="api-tls off
api-plaintext-tokens loopback"
fi
cat >"$tmp/hvd.conf" <<EOF
state-dir $tmp/state
api-socket $sock
api-listen 127.0.0.1:0
$listen_tls
# The networks are rows to list, not VXLAN devices on this machine.
mesh-anchor off
EOF
"$hvd_bin" -d -f "$tmp/hvd.conf" >"$tmp/hvd.log" 2>&1 &
hvd_pid=$!

ucurl() {
	curl -sS --unix-socket "$sock" "$@"
}

for ((i = 0; ; i++)); do
	kill -0 "$hvd_pid" 2>/dev/null || { show_log "$tmp/hvd.log"; die "hvd exited during start-up"; }
	[[ -S $sock ]] && status=$(ucurl -f http://localhost/api/v1/status 2>/dev/null) && break
	((i < 100)) || { show_log "$tmp/hvd.log"; die "hvd did not answer on $sock within 10s"; }
	sleep 0.1
done
hvd_addr=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["listen"]["tcp"])' <<<"$status") ||
	die "no listen.tcp in GET /api/v1/status: $status"
hvd_url=$scheme://$hvd_addr$path

# All networks through one curl process (one connection, no fork per row).
start=$(date +%s.%N)
for ((i = 1; i <= networks; i++)); do
	printf -v name 'bench-%05d' "$i"
	cat <<EOF
url = "http://localhost$path"
unix-socket = "$sock"
header = "Content-Type: application/json"
data = "{\"name\":\"$name\",\"vni\":$i,\"description\":\"api benchmark network $i\"}"
output = "/dev/null"
write-out = "%{http_code}\\n"
EOF
	((i == networks)) || echo next
done >"$tmp/create.curl"
ucurl -K "$tmp/create.curl" >"$tmp/create.codes" || true
created=$(grep -c '^201$' "$tmp/create.codes" || true)
[[ $created -eq $networks ]] || {
	sort "$tmp/create.codes" | uniq -c >&2
	show_log "$tmp/hvd.log"
	die "created $created of $networks networks"
}
note "created $networks networks in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')s"

token=$(HVCTL_SOCKET=$sock "$hvctl_bin" token create --role read --name api-bench 2>/dev/null) ||
	die "hvctl token create failed"
[[ $token == hvt_* ]] || die "hvctl token create printed no token"
auth="Authorization: Bearer $token"

# GET PATH from URL with the bench token into FILE; fails on non-200.
fetch() {
	local url=$1 out=$2 code

	code=$(curl -sS "${cacert[@]}" -H "$auth" -o "$out" -w '%{http_code}' "$url") || return 1
	[[ $code == 200 ]] || { echo "api bench: $url answered $code" >&2; return 1; }
}

# hvd.body is the reference; nginx serves a copy of it.
ref=$tmp/hvd.body
fetch "$hvd_url" "$ref" || { show_log "$tmp/hvd.log"; die "GET $hvd_url failed"; }
cp -- "$ref" "$body"
rows=$(python3 -c 'import json, sys; print(len(json.load(sys.stdin)["networks"]))' <"$ref") ||
	die "hvd's $path body is not the expected JSON"
[[ $rows -eq $networks ]] || die "hvd listed $rows networks, expected $networks"
body_bytes=$(stat -c %s "$ref")

# Both requests on one connection: the second must not connect again.
check_keepalive() {
	local url=$1 who=$2 n

	n=$(curl -sS "${cacert[@]}" -H "$auth" -o /dev/null -o /dev/null -w '%{num_connects}\n' \
	    "$url" "$url" | tr '\n' ' ')
	[[ $n == "1 0 " ]] ||
		warn "$who did not keep the connection alive (connects: $n)"
}
check_keepalive "$hvd_url" hvd

# --- nginx -----------------------------------------------------------------------

# start_nginx WORKERS: serves $tmp/www on a fresh port; sets nginx_pid, nginx_url.
start_nginx() {
	local workers=$1 port conf=$tmp/nginx/nginx.conf i

	port=$(free_port)
	{
		echo "daemon off;"
		# As root, workers would drop to nobody, who cannot read $tmp (0700).
		[[ $EUID -ne 0 ]] || echo "user root;"
		cat <<EOF
worker_processes $workers;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events {
	worker_connections 1024;
}
http {
	access_log off;
	client_body_temp_path $tmp/nginx/body;
	proxy_temp_path $tmp/nginx/proxy;
	fastcgi_temp_path $tmp/nginx/fastcgi;
	uwsgi_temp_path $tmp/nginx/uwsgi;
	scgi_temp_path $tmp/nginx/scgi;
	types { }
	default_type application/json;
	sendfile on;
	tcp_nopush on;
	keepalive_timeout 65s;
	# nginx closes a connection after 1000 requests by default; hvd does not.
	keepalive_requests 1000000000;
	server {
		listen 127.0.0.1:$port$([[ $tls == 1 ]] && echo " ssl");
$([[ $tls == 1 ]] && printf '\t\tssl_certificate %s;\n\t\tssl_certificate_key %s;\n' "$tmp/tls.crt" "$tmp/tls.key")
		root $tmp/www;
		add_header Cache-Control no-store;
		location = $path { }
		location / { return 404; }
	}
}
EOF
	} >"$conf"
	: >"$tmp/nginx/error.log"
	"$nginx_bin" -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$conf" \
	    >>"$tmp/nginx/stderr.log" 2>&1 &
	nginx_pid=$!
	nginx_url=$scheme://127.0.0.1:$port$path
	for ((i = 0; ; i++)); do
		kill -0 "$nginx_pid" 2>/dev/null || {
			show_log "$tmp/nginx/stderr.log"; show_log "$tmp/nginx/error.log"
			die "nginx (worker_processes $workers) exited during start-up"
		}
		curl -sf "${cacert[@]}" -o /dev/null "$nginx_url" 2>/dev/null && break
		((i < 100)) || { show_log "$tmp/nginx/error.log"; die "nginx did not answer on port $port within 10s"; }
		sleep 0.1
	done
	fetch "$nginx_url" "$tmp/nginx.body" || die "GET $nginx_url failed"
	cmp -- "$ref" "$tmp/nginx.body" ||
		die "nginx and hvd bodies differ"
	check_keepalive "$nginx_url" "nginx (worker_processes $workers)"
}

stop_nginx() {
	stop_pid "$nginx_pid"
	nginx_pid=
}

# --- measuring --------------------------------------------------------------------

# CPU ticks (user + system) used so far by a PID and its children (nginx's
# workers), read from /proc; the field after "(comm)" is the state, so
# utime and stime are the 12th and 13th from there.
cpu_ticks() {
	local p t=0 v

	for p in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null || true); do
		v=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }') || continue
		t=$((t + ${v:-0}))
	done
	echo "$t"
}

# bench NAME URL PID: prints wrk's report, sets $rps and $cores (CPUs the
# server PID and its children used while measured); fails on any non-2xx.
bench() {
	local name=$1 url=$2 pid=$3 out=$tmp/wrk.$1.txt t0 t1 w0 w1

	wrk -t"$threads" -c"$conns" -d"$warmup" -H "$auth" "$url" >/dev/null ||
		die "wrk warm-up against $name failed"
	t0=$(cpu_ticks "$pid") w0=$(date +%s.%N)
	wrk -t"$threads" -c"$conns" -d"$duration" --latency -H "$auth" "$url" >"$out" ||
		{ cat "$out" >&2; die "wrk against $name failed"; }
	t1=$(cpu_ticks "$pid") w1=$(date +%s.%N)
	cores=$(awk -v t="$((t1 - t0))" -v hz="$hz" -v a="$w0" -v b="$w1" \
	    'BEGIN { printf "%.2f", t / hz / (b - a) }')
	echo "==== wrk: $name ($url)"
	sed 's/^/    /' "$out"
	! grep -q 'Non-2xx or 3xx responses' "$out" ||
		die "$name answered non-2xx during the run"
	! grep -q 'Socket errors' "$out" ||
		warn "$name: $(grep 'Socket errors' "$out" | sed 's/^ *//')"
	rps=$(awk '$1 == "Requests/sec:" { print $2 }' "$out")
	[[ $rps =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "no Requests/sec in wrk's report for $name"
	[[ $rps != 0 && $rps != 0.00 ]] || die "$name served no requests"
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else printf "n/a" }'
}

hz=$(getconf CLK_TCK)
note "wrk -t$threads -c$conns -d$duration --latency (warm-up $warmup), $networks rows, $body_bytes-byte body, $(nproc) CPUs"

bench hvd "$hvd_url" "$hvd_pid"
hvd_rps=$rps hvd_cores=$cores

start_nginx 1
bench nginx-1 "$nginx_url" "$nginx_pid"
nginx1_rps=$rps nginx1_cores=$cores
stop_nginx

start_nginx auto
bench nginx-auto "$nginx_url" "$nginx_pid"
nginxn_rps=$rps nginxn_cores=$cores
nginxn_workers=$(ps -o pid= --ppid "$nginx_pid" | wc -l)
stop_nginx

# hvd must still serve the same bytes after the load.
fetch "$hvd_url" "$tmp/hvd.after" || die "GET $hvd_url failed after the run"
cmp -- "$ref" "$tmp/hvd.after" || die "hvd's body changed during the run"
kill -0 "$hvd_pid" 2>/dev/null || die "hvd died"

echo
printf 'api bench: GET %s, %d rows, %d bytes, wrk -t%s -c%s -d%s, keep-alive, %s\n' \
    "$path" "$networks" "$body_bytes" "$threads" "$conns" "$duration" \
    "$([[ $tls == 1 ]] && echo "over TLS (one ECDSA P-256 certificate for both)" || echo plaintext)"
printf 'api bench: hvd   %10.2f req/s (server CPU %s cores)\n' "$hvd_rps" "$hvd_cores"
printf 'api bench: nginx %10.2f req/s (worker_processes 1; server CPU %s cores)\n' \
    "$nginx1_rps" "$nginx1_cores"
printf 'api bench: ratio hvd/nginx = %s (goal >= 0.5)\n' "$(ratio "$hvd_rps" "$nginx1_rps")"
printf 'api bench: nginx %10.2f req/s (worker_processes auto = %d; server CPU %s cores; context only)\n' \
    "$nginxn_rps" "$nginxn_workers" "$nginxn_cores"
printf 'api bench: ratio hvd/nginx-auto = %s (context only)\n' "$(ratio "$hvd_rps" "$nginxn_rps")"
printf 'api bench: req per server CPU-second: hvd %s, nginx(1) %s, ratio %s (context only)\n' \
    "$(ratio "$hvd_rps" "$hvd_cores")" "$(ratio "$nginx1_rps" "$nginx1_cores")" \
    "$(ratio "$(ratio "$hvd_rps" "$hvd_cores")" "$(ratio "$nginx1_rps" "$nginx1_cores")")"
