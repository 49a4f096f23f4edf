#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
#
# HTTP boot-file benchmark: 200 concurrent clients each fetch a 64 MiB
# initramfs once from hvd's boot HTTP listener (GET /boot/files/initramfs,
# served zero-copy from the boot root by libmicrohttpd), side by side with
# nginx serving the very same file at the same path.  Goal: hvd >= 0.9x the
# throughput of one nginx worker, with hvd's peak RSS reported and flat
# (it must not grow with file size x clients).
#
# usage: test/bench/boot/http.sh [HVD_BINARY]
#        (default: build/release/daemon/hvd; build it with
#         cmake --preset release && cmake --build --preset release -j2)
#
# Environment knobs (defaults in brackets):
#   BENCH_CLIENTS    [200]  concurrent clients (one whole-file GET each)
#   BENCH_SIZE_MIB   [64]   size of the random initramfs
#   BENCH_ROUNDS     [3]    rounds per server
#   BENCH_NGINX_AUTO [1]    also measure nginx with worker_processes auto
#   BENCH_TIMEOUT    [600]  curl --max-time per transfer, seconds
#   NGINX            [/usr/sbin/nginx]
#
# What it does:
#  1. Makes a temp dir with a boot root holding BENCH_SIZE_MIB of
#     /dev/urandom as "initramfs".  Starts hvd from its own config
#     (state-dir, api-socket, boot-root, boot-http-listen 127.0.0.1:0) and
#     reads the real port from GET /api/v1/status (.listen.boot_http) over
#     the unix socket.
#  2. Starts nginx (daemon off, its own config, pid and temp paths in the
#     temp dir, access_log off, sendfile on, tcp_nopush on, defaults
#     otherwise, e.g. sendfile_max_chunk 2m) on another free port, serving
#     the same file (same inode, so the same page cache) at the same URL
#     path: worker_processes 1 for the headline per-core comparison, since
#     hvd serves HTTP from one event loop on one thread; and a second
#     instance with worker_processes auto for context only.
#  3. Before measuring, fetches the file once from every server and checks
#     that the sha256 of each body equals the file's.
#  4. Load: BENCH_CLIENTS curl processes started at once by xargs -P, each
#     fetching the whole file once into /dev/null (a new connection each),
#     and reporting its HTTP status, size and time.  A round's throughput is
#     total bytes / wall time of the round (first spawn to last exit), in
#     MiB/s; a transfer counts as complete only with status 200 and the full
#     size.  Rounds alternate servers (hvd, nginx(1), nginx(auto), hvd, ...)
#     so drift on a shared machine hits all of them alike; the summary uses
#     the median round of each server.
#  5. hvd's memory: VmRSS just before the first round ("start"), VmHWM
#     (peak; reset through /proc/PID/clear_refs just before the first round
#     when the kernel allows it, so it covers the load only, otherwise it is
#     the lifetime peak) and VmRSS after the last round ("after"), from
#     /proc/PID/status.  "flat" means the peak grew by less than 64 KiB per
#     client over start: per-connection state (libmicrohttpd gives each
#     connection a 32 KiB memory pool), not file data.  Buffering the file
#     per client would instead grow it by up to size x clients (12.5 GiB at
#     the defaults).
#  6. Checks after the load that hvd is alive and still serves the same
#     bytes, then prints per-round lines and the summary:
#
#       boot bench: http hvd <N> MiB/s (200/200), nginx(1) <N> MiB/s (200/200),
#         ratio 0.xx (goal >= 0.9); hvd peak RSS <p> MiB (start <s> MiB, after <a> MiB)
#       (one line), then the nginx(auto) figure for context.
#
# Reading the numbers: client and servers share the machine.  The clients
# are the same for every server (curl 7.x, one process per transfer) and
# they do the expensive part on loopback: the server's sendfile only hands
# page-cache pages to the socket, while every client copies 64 MiB out of
# its socket.  On a 2-core box the clients therefore use most of the CPU,
# and a round can be limited by the clients rather than by the server.  Per
# round the script prints the CPU the server (nginx: master and workers)
# and the clients used, in cores (utime+stime / wall time): a server well
# under one core while the clients fill the rest means a client-bound round,
# where the ratio says "no slower than nginx here" rather than a true
# per-core ratio.  Rounds on a shared machine vary; run it more than once.
#
# A trap stops every process the script started, by PID (hvd, both nginx
# masters, the load generator and its curls), never by name, and removes the
# temp dir, whichever way the script exits.  Exits non-zero only when
# something breaks (a server fails to start or answers wrongly, the bytes
# differ, a transfer fails or comes back short, hvd dies, a tool is
# missing); never on the ratio or the RSS.  A benchmark, not a timed test:
# run it by hand, don't add it to ctest.

set -euo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../../.." && pwd)
hvd_bin=${1:-$repo/build/release/daemon/hvd}
nginx_bin=${NGINX:-/usr/sbin/nginx}
clients=${BENCH_CLIENTS:-200}
size_mib=${BENCH_SIZE_MIB:-64}
rounds=${BENCH_ROUNDS:-3}
nginx_auto=${BENCH_NGINX_AUTO:-1}
timeout=${BENCH_TIMEOUT:-600}
path=/boot/files/initramfs

die() {
	echo "boot bench: http: FAIL: $*" >&2
	exit 1
}

note() {
	echo "boot bench: http: $*"
}

warn() {
	echo "boot bench: http: WARNING: $*" >&2
}

# --- preflight --------------------------------------------------------------

[[ $# -le 1 ]] || { echo "usage: $0 [HVD_BINARY]" >&2; exit 2; }
for b in hvd_bin nginx_bin; do
	[[ -x ${!b} ]] || die "${!b}: not an executable (build with: cmake --preset release && cmake --build --preset release -j2)"
	printf -v "$b" '%s' "$(readlink -f -- "${!b}")"
done
for t in curl python3 xargs sha256sum awk ps; do
	command -v "$t" >/dev/null || die "'$t' not found in PATH"
done
[[ $clients =~ ^[1-9][0-9]*$ && $clients -le 2000 ]] || die "BENCH_CLIENTS must be in 1..2000"
[[ $size_mib =~ ^[1-9][0-9]*$ && $size_mib -le 4096 ]] || die "BENCH_SIZE_MIB must be in 1..4096"
[[ $rounds =~ ^[1-9][0-9]*$ && $rounds -le 20 ]] || die "BENCH_ROUNDS must be in 1..20"
[[ $nginx_auto == [01] ]] || die "BENCH_NGINX_AUTO must be 0 or 1"
[[ $timeout =~ ^[1-9][0-9]*$ ]] || die "BENCH_TIMEOUT must be a number of seconds"
# Each server holds a socket and a file fd per client.
(( $(ulimit -n) >= 2 * clients + 64 )) || ulimit -n $((2 * clients + 64)) 2>/dev/null ||
	die "ulimit -n $(ulimit -n) is too low for $clients clients"

# --- temp dir and cleanup -----------------------------------------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hvbench-boot-http.XXXXXX")
hvd_pid=
nginx1_pid=
nginxa_pid=
load_pid=

# Stops one process we started, by its PID: TERM, then KILL after 5s.
# nginx's master takes its workers down on TERM; on KILL they (and the
# load generator's curls) are found by their parent PID, never by name.
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

# The load generator: xargs does not pass TERM on, so stop its curls
# (its children, by PID) first, then xargs itself.
stop_load() {
	local kids

	[[ -n $load_pid ]] || return 0
	kids=$(ps -o pid= --ppid "$load_pid" 2>/dev/null || true)
	# shellcheck disable=SC2086 # $kids is a list of PIDs
	[[ -z $kids ]] || kill -TERM $kids 2>/dev/null || true
	stop_pid "$load_pid"
	load_pid=
}

cleanup() {
	local rc=$?

	trap - EXIT INT TERM
	stop_load
	stop_pid "$nginx1_pid"
	stop_pid "$nginxa_pid"
	stop_pid "$hvd_pid"
	rm -rf -- "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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

# --- the file -------------------------------------------------------------------

root=$tmp/boot
mkdir -p "$root" "$tmp/state"
head -c $((size_mib * 1048576)) /dev/urandom >"$root/initramfs" ||
	die "cannot write $size_mib MiB into $root"
size=$(stat -c %s "$root/initramfs")
sum=$(sha256sum <"$root/initramfs" | cut -d' ' -f1)

# check_bytes NAME URL: one full fetch; its sha256 must be the file's.
check_bytes() {
	local name=$1 url=$2 got

	got=$(curl -sS -f --max-time "$timeout" "$url" | sha256sum | cut -d' ' -f1) ||
		die "GET $url ($name) failed"
	[[ $got == "$sum" ]] ||
		die "$name served different bytes at $url (sha256 $got, file $sum)"
}

# --- hvd ------------------------------------------------------------------------

sock=$tmp/hvd.sock
cat >"$tmp/hvd.conf" <<EOF
state-dir $tmp/state
api-socket $sock
boot-root $root
boot-http-listen 127.0.0.1:0
EOF
"$hvd_bin" -d -f "$tmp/hvd.conf" >"$tmp/hvd.log" 2>&1 &
hvd_pid=$!

for ((i = 0; ; i++)); do
	kill -0 "$hvd_pid" 2>/dev/null || { show_log "$tmp/hvd.log"; die "hvd exited during start-up"; }
	[[ -S $sock ]] && status=$(curl -sSf --unix-socket "$sock" \
	    http://localhost/api/v1/status 2>/dev/null) && break
	((i < 100)) || { show_log "$tmp/hvd.log"; die "hvd did not answer on $sock within 10s"; }
	sleep 0.1
done
hvd_addr=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["listen"]["boot_http"])' \
    <<<"$status") || die "no listen.boot_http in GET /api/v1/status: $status"
hvd_url=http://$hvd_addr$path
check_bytes hvd "$hvd_url"

# --- nginx -----------------------------------------------------------------------

# start_nginx TAG WORKERS: serves $root at /boot/files/ on a fresh port;
# sets nginx_pid and nginx_url.
start_nginx() {
	local tag=$1 workers=$2 dir=$tmp/nginx-$1 port i

	mkdir -p "$dir"
	port=$(free_port)
	{
		echo "daemon off;"
		# As root, workers would drop to nobody, who cannot read $tmp (0700).
		[[ $EUID -ne 0 ]] || echo "user root;"
		cat <<EOF
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
	worker_connections $((2 * clients + 64));
}
http {
	access_log off;
	client_body_temp_path $dir/body;
	proxy_temp_path $dir/proxy;
	fastcgi_temp_path $dir/fastcgi;
	uwsgi_temp_path $dir/uwsgi;
	scgi_temp_path $dir/scgi;
	types { }
	default_type application/octet-stream;
	sendfile on;
	tcp_nopush on;
	server {
		listen 127.0.0.1:$port;
		location /boot/files/ {
			alias $root/;
		}
		location / { return 404; }
	}
}
EOF
	} >"$dir/nginx.conf"
	: >"$dir/error.log"
	"$nginx_bin" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" \
	    >>"$dir/stderr.log" 2>&1 &
	nginx_pid=$!
	nginx_url=http://127.0.0.1:$port$path
	for ((i = 0; ; i++)); do
		kill -0 "$nginx_pid" 2>/dev/null || {
			show_log "$dir/stderr.log"; show_log "$dir/error.log"
			die "nginx (worker_processes $workers) exited during start-up"
		}
		curl -sf -o /dev/null -r 0-0 "$nginx_url" 2>/dev/null && break
		((i < 100)) || { show_log "$dir/error.log"; die "nginx did not answer on port $port within 10s"; }
		sleep 0.1
	done
	check_bytes "nginx ($tag)" "$nginx_url"
}

start_nginx 1 1
nginx1_pid=$nginx_pid nginx1_url=$nginx_url
servers=(hvd nginx1)
if [[ $nginx_auto == 1 ]]; then
	start_nginx auto auto
	nginxa_pid=$nginx_pid nginxa_url=$nginx_url
	servers+=(nginxa)
	nginxa_workers=$(ps -o pid= --ppid "$nginxa_pid" | wc -l)
fi
note "identical bytes: hvd and nginx serve sha256 ${sum:0:16}... ($size bytes) at $path"

# --- measuring --------------------------------------------------------------------

hz=$(getconf CLK_TCK)

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

# child_cpu FILE: seconds of user + system CPU used by this shell's reaped
# children (the second line of `times`), which includes xargs and all its
# curls.  `times` runs in this shell: in a $(...) subshell it would report
# the subshell's own (empty) children.
child_cpu() {
	times >"$1"
	awk 'NR == 2 {
		t = 0
		for (i = 1; i <= 2; i++) {
			split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2]
		}
		printf "%.3f", t
	}' "$1"
}

# kib FIELD: a VmXXX field of hvd's /proc status, in KiB.
kib() {
	awk -v f="$1:" '$1 == f { print $2 }' "/proc/$hvd_pid/status"
}

mib() {
	awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'
}

median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else printf "n/a" }'
}

seq "$clients" | sed "s|.*|$hvd_url|" >"$tmp/urls.hvd"
seq "$clients" | sed "s|.*|$nginx1_url|" >"$tmp/urls.nginx1"
[[ $nginx_auto == 0 ]] || seq "$clients" | sed "s|.*|$nginxa_url|" >"$tmp/urls.nginxa"

declare -A label=([hvd]=hvd [nginx1]="nginx(1)" [nginxa]="nginx(auto)")
declare -A pidof_server=([hvd]=$hvd_pid [nginx1]=$nginx1_pid [nginxa]=$nginxa_pid)
declare -A mibs=() worst=() fail=()
for s in "${servers[@]}"; do worst[$s]=$clients fail[$s]=0; done

# round SERVER N: one round of $clients parallel whole-file GETs.
round() {
	local s=$1 n=$2 out=$tmp/round.$1.$2 t0 t1 w0 w1 c0 c1 ok wall tput srv cli line

	t0=$(cpu_ticks "${pidof_server[$s]}")
	child_cpu "$tmp/times" >"$tmp/c0"
	w0=$(date +%s.%N)
	xargs -P "$clients" -n 1 curl -s -o /dev/null --max-time "$timeout" \
	    -w '%{http_code} %{size_download} %{time_total}\n' \
	    <"$tmp/urls.$s" >"$out" 2>"$out.err" &
	load_pid=$!
	wait "$load_pid" || true	# failures show up in the per-transfer lines
	load_pid=
	w1=$(date +%s.%N)
	child_cpu "$tmp/times" >"$tmp/c1"
	t1=$(cpu_ticks "${pidof_server[$s]}")
	c0=$(<"$tmp/c0") c1=$(<"$tmp/c1")
	ok=$(awk -v sz="$size" '$1 == 200 && $2 == sz { n++ } END { print n + 0 }' "$out")
	wall=$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.2f", b - a }')
	# Throughput counts only complete transfers.
	tput=$(awk -v n="$ok" -v sz="$size" -v w="$wall" 'BEGIN { printf "%.1f", n * sz / 1048576 / w }')
	srv=$(awk -v t="$((t1 - t0))" -v hz="$hz" -v w="$wall" 'BEGIN { printf "%.2f", t / hz / w }')
	cli=$(awk -v a="$c0" -v b="$c1" -v w="$wall" 'BEGIN { printf "%.2f", (b - a) / w }')
	mibs[$s]+="$tput "
	((ok >= worst[$s])) || worst[$s]=$ok
	((ok == clients)) || fail[$s]=1
	line=$(printf '%-11s round %d: %8.1f MiB/s, %d/%d complete, %6.2fs wall, server CPU %s cores, clients CPU %s cores' \
	    "${label[$s]}" "$n" "$tput" "$ok" "$clients" "$wall" "$srv" "$cli")
	[[ $s != hvd ]] || line+=$(printf ', hvd RSS %s MiB (peak %s)' "$(mib "$(kib VmRSS)")" "$(mib "$(kib VmHWM)")")
	note "$line"
	if ((ok != clients)); then
		warn "${label[$s]} round $n: $((clients - ok)) transfers failed or came back short:"
		awk -v sz="$size" '!($1 == 200 && $2 == sz)' "$out" | sort | uniq -c | head -5 >&2
		head -5 "$out.err" >&2
	fi
	kill -0 "$hvd_pid" 2>/dev/null || { show_log "$tmp/hvd.log"; die "hvd died during the load"; }
}

rss_start=$(kib VmRSS)
hwm_note="peak since the first round"
echo 5 2>/dev/null >"/proc/$hvd_pid/clear_refs" || hwm_note="lifetime peak"
note "$clients clients x $size_mib MiB (curl per transfer, xargs -P $clients), $rounds rounds per server, alternating; $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= rounds; r++)); do
	for s in "${servers[@]}"; do
		round "$s" "$r"
	done
done
rss_hwm=$(kib VmHWM)
rss_after=$(kib VmRSS)

# hvd must still serve the same bytes after the load.
check_bytes hvd "$hvd_url"

# --- summary ------------------------------------------------------------------------

# shellcheck disable=SC2086 # word lists of per-round figures
hvd_med=$(median ${mibs[hvd]}) n1_med=$(median ${mibs[nginx1]})
grow=$((rss_hwm - rss_start))
((grow >= 0)) || grow=0
flat="+$(mib "$grow") MiB = $((grow / clients)) KiB/client at peak"
if ((grow < 64 * clients)); then flat+=", flat"; else flat+=", NOT flat"; fi
echo
note "rounds (MiB/s): hvd ${mibs[hvd]}| nginx(1) ${mibs[nginx1]}${mibs[nginxa]:+| nginx(auto) ${mibs[nginxa]}}"
echo "boot bench: http hvd $(printf '%.0f' "$hvd_med") MiB/s (${worst[hvd]}/$clients)," \
    "nginx(1) $(printf '%.0f' "$n1_med") MiB/s (${worst[nginx1]}/$clients)," \
    "ratio $(ratio "$hvd_med" "$n1_med") (goal >= 0.9);" \
    "hvd peak RSS $(mib "$rss_hwm") MiB (start $(mib "$rss_start") MiB, after $(mib "$rss_after") MiB; $flat, $hwm_note)"
if [[ $nginx_auto == 1 ]]; then
	# shellcheck disable=SC2086
	na_med=$(median ${mibs[nginxa]})
	echo "boot bench: http nginx(auto = $nginxa_workers workers) $(printf '%.0f' "$na_med") MiB/s" \
	    "(${worst[nginxa]}/$clients), ratio hvd/nginx(auto) $(ratio "$hvd_med" "$na_med") (context only)"
fi
note "medians of $rounds rounds; (n/$clients) is the worst round's complete transfers"

for s in "${servers[@]}"; do
	((fail[$s] == 0)) || die "${label[$s]}: not every transfer completed (worst round ${worst[$s]}/$clients)"
done
